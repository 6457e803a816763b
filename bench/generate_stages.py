"""Where one ``generate`` process spends its time, stage by stage, on the original job (see ``bench.generate``).

Run it as a fresh process each time (the point is the cold costs: imports, tables built, memory first touched):

    python -m bench.generate_stages [--days 3] [--every 25]

Prints: ``import numpy``, the simulator's imports, generating the chunks (profile and errors), the CSV text of the
three seed-layout files, and writing them to a temporary directory. Interpreter start is not included: time
``python -c pass`` for that.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `python -m simulator` sets it (no busy-waiting BLAS threads)
STARTED = time.perf_counter()

import numpy  # noqa: E402,F401  (timed: the first import of numpy in this process)

NUMPY = time.perf_counter()

import argparse  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import simulator.__main__  # noqa: E402  (timed: what `python -m simulator generate` imports)
import simulator.commands  # noqa: E402  (loaded by the line above)
from simulator.dataset.layouts import tables  # noqa: E402
from simulator.dataset.plan import DatasetPlan, chunks  # noqa: E402
from simulator.dataset.writers import seed_texts  # noqa: E402
from simulator.meters.faults import FaultConfig  # noqa: E402

IMPORTS = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--every", type=int, default=25)
    args = parser.parse_args()
    simulator.commands.keep_freed_memory()  # as `generate` does
    plan = DatasetPlan(days=args.days, seed=1, faults=FaultConfig(every_s=args.every), layout="seed", profile="classic")
    started = time.perf_counter()
    data = list(chunks(plan))
    generated = time.perf_counter()
    texts = [seed_texts(tables("seed", chunk, plan.origin_s())) for chunk in data]
    formatted = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        for kind in texts[0]:
            with (Path(tmp) / kind).open("wb") as file:
                for text in texts:
                    file.write(text[kind])
        written = time.perf_counter()
    size = sum(len(text) for chunk in texts for text in chunk.values()) / 1e6
    print(
        f"import numpy {1e3 * (NUMPY - STARTED):.0f} ms, simulator imports {1e3 * (IMPORTS - NUMPY):.0f} ms, "
        f"chunks {1e3 * (generated - started):.0f} ms, CSV text {1e3 * (formatted - generated):.0f} ms, "
        f"write {size:.0f} MB {1e3 * (written - formatted):.0f} ms"
    )


if __name__ == "__main__":
    main()
