"""Sum py-spy's collapsed stacks (``py-spy record --format raw``) by function: own samples and inclusive samples.

python -m bench.stacks FILE [--top 25] [--thread NAME]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def summarise(lines: list[str], thread: str | None) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, samples per function at the top of the stack (own), and per function anywhere in it."""
    total, own, inclusive = 0, Counter[str](), Counter[str]()
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if thread is not None and thread not in frames[0]:
            continue
        count = int(count_text)
        total += count
        own[frames[-1]] += count
        for frame in set(frames[1:]):
            inclusive[frame] += count
    return total, own, inclusive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", help="only stacks whose first frame (py-spy's thread label) contains this")
    args = parser.parse_args()
    total, own, inclusive = summarise(Path(args.file).read_text().splitlines(), args.thread)
    print(f"{total} samples")
    for title, counts in (("own", own), ("inclusive", inclusive)):
        print(f"\nby {title} samples:")
        for frame, count in counts.most_common(args.top):
            print(f"  {count / max(1, total):6.1%}  {frame}")


if __name__ == "__main__":
    main()
