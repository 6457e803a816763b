"""Entry point of the simulator, ``python -m simulator run|generate|plot ...``: the command line is
``simulator.cli``, the commands ``simulator.commands``.

Bad arguments or settings: one line on stderr and exit code 2.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import NoReturn

if __name__ == "__main__":
    # numpy's OpenBLAS starts a thread per core at import that busy-waits for work for ~0.1 s (0.06 s of CPU on
    # `import numpy` alone, 2 cores); nothing here multiplies matrices, so a program run of the simulator starts none.
    # An importer (tests, benchmarks) is left as it is; a value set by the user is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # The imports below (numpy's included) make some 100,000 long-lived objects and next to no garbage: the
    # collector is off until they are done, and then leaves them out of its passes (`gc.freeze` below).
    gc.disable()


from config.errors import ConfigError
from config.run.logs import configure_logging
from config.settings import load_settings
from simulator.cli import build_parser, command_in, with_options
from simulator.commands import COMMANDS


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad arguments or settings)."""
    try:
        words = sys.argv[1:] if argv is None else argv
        args = build_parser(command_in(words)).parse_args(words)
        settings = with_options(load_settings(os.environ), args)
        configure_logging(settings.log_level, "simulator")
        return COMMANDS[args.command](args, settings)
    except ConfigError as exc:
        print(f"simulator: configuration error: {exc}", file=sys.stderr)
        return 2


def _exit_now(status: int) -> NoReturn:
    """End a finished ``generate`` without the interpreter's teardown: its files are closed (and renamed) by then,
    no thread is left, and the teardown only frees what the exit frees anyway (every module, ~8 ms). Logging's and
    the standard streams' buffers are flushed first, as the normal exit does; nothing else is registered to run."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    gc.freeze()  # the modules' objects: a full collection (one per ~40,000 new objects) no longer walks them
    gc.enable()
    status = main()
    if command_in(sys.argv[1:]) == "generate":
        _exit_now(status)
    sys.exit(status)
