"""The README's Layout section, generated from the packages' module docstrings (``python -m config.run.layout``).

Each package, subpackage and module is listed with the first sentence of its docstring, in folder order, so the
section says what the code says it is; ``--write`` puts it into README.md between its two markers, and a unit test
(tests/unit/config/run/test_layout.py) fails when the README and the packages disagree.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import textwrap
from pathlib import Path
from typing import Final

PACKAGES: Final = ("config", "simulator", "bridge", "broker")
BEGIN: Final = "<!-- layout: generated from the module docstrings by `python -m config.run.layout --write` (tested) -->"
END: Final = "<!-- end of the generated layout -->"
WIDTH: Final = 120
NAME_WIDTH: Final = 18  # the longest name with its indent, plus room
_SENTENCE_END: Final = re.compile(r"(?<!e\.g)(?<!i\.e)\.(?:\s|$)")


def summary(source: str, name: str) -> str:
    """The first sentence of the module docstring of ``source`` (RST literals as plain text); ``name`` for errors."""
    doc = ast.get_docstring(ast.parse(source))
    if not doc:
        raise ValueError(f"{name}: no module docstring (the Layout section lists what each module says it is)")
    paragraph = " ".join(doc.split("\n\n")[0].split()).replace("``", "")
    end = _SENTENCE_END.search(paragraph)
    return paragraph if end is None else paragraph[: end.start() + 1]


def entry(label: str, text: str, depth: int) -> list[str]:
    """One module's (or package's) lines: its name, indented by depth, then its summary, wrapped at ``WIDTH``."""
    head = f"{'  ' * depth}{label}".ljust(NAME_WIDTH)
    if len(head) > NAME_WIDTH:  # a name too long for the column gets a line of its own
        return [
            head.rstrip(),
            *textwrap.wrap(text, WIDTH, initial_indent=" " * NAME_WIDTH, subsequent_indent=" " * NAME_WIDTH),
        ]
    return textwrap.wrap(text, WIDTH, initial_indent=head, subsequent_indent=" " * NAME_WIDTH)


def package_lines(folder: Path, depth: int = 0) -> list[str]:
    """The lines of a package folder: itself (its ``__init__``), its modules, then its subpackages, each by name."""
    name = folder.name
    lines = entry(f"{name}/", summary((folder / "__init__.py").read_text(), f"{name}/__init__.py"), depth)
    for path in sorted(folder.glob("*.py")):
        if path.name != "__init__.py":
            lines += entry(path.stem, summary(path.read_text(), str(path)), depth + 1)
    for sub in sorted(p for p in folder.iterdir() if (p / "__init__.py").is_file()):
        lines += package_lines(sub, depth + 1)
    return lines


def layout(root: Path) -> str:
    """The generated section: the markers around a code block of every package under ``root``."""
    lines = [line for package in PACKAGES for line in package_lines(root / package)]
    return "\n".join([BEGIN, "```", *lines, "```", END])


def with_layout(readme: str, section: str) -> str:
    """``readme`` with the text between its markers (markers included) replaced by ``section``."""
    start, stop = readme.find(BEGIN), readme.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"README.md has no {BEGIN!r} ... {END!r} markers")
    return readme[:start] + section + readme[stop + len(END) :]


def main(argv: list[str] | None = None) -> int:
    """Print the section, or with ``--write`` put it into README.md; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m config.run.layout", description=__doc__)
    parser.add_argument("--root", default=".", help="the repository's root (default: the working directory)")
    parser.add_argument("--write", action="store_true", help="replace the section in README.md")
    args = parser.parse_args(argv)
    root = Path(args.root)
    section = layout(root)
    if not args.write:
        print(section)
        return 0
    readme = root / "README.md"
    readme.write_text(with_layout(readme.read_text(), section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
