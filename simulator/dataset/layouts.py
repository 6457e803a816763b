"""File layouts of the batch generator: a ``plan.Chunk`` as tables (``table.Table``), one per output file. Pure.

``tidy`` (default; csv or parquet), one row per meter and second, in chunk order: by local day, then meter (fleet
order), then time.

- ``energy_data_without_errors``: ``timestamp`` (UTC, tz-aware: the start of the second), ``meter``, ``ac_w``,
  ``geyser_w``, ``overall_w`` (power in W, float64).
- ``energy_data_with_errors`` (only with an error rate): the same rows, the faulted values (null/NaN where missing)
  and the ground truth ``ac_error``, ``geyser_error``, ``overall_error``: ``none`` for a clean value, else
  ``negative``, ``spike``, ``missing``, ``stuck`` or ``dropout``. A dropout second (no reading on the wire) is kept as a
  row with all three values null and all three errors ``dropout``, so both files have the same rows in the same order
  and the ground truth is complete; to replay what a subscriber would have received, drop those rows.

``seed`` (csv only; the classic households A, B, C only): the original generator's files exactly. An index column
(empty header name, so the header starts with ``,``), then ``A_AC,A_Geyser,A_Overall,B_AC,...`` in kW, one row per
second, row 0 = local midnight of the first day (86,400 rows a day; 23 or 25 hours' worth on a DST change).

Every value is rounded to the meter's resolution, 0.1 W (1 decimal in W, 4 in kW), as readings are on the wire.

- ``realistic_fake_energy_data_without_errors`` and ``realistic_fake_energy_data_with_errors`` (only with an error
  rate): as the original. Both come from the same draw (the original drew them independently), so a row of one is the
  same second as that row of the other. A dropout second has every channel of that meter empty.
- ``realistic_fake_energy_data_error_types`` (only with an error rate): the ground truth, which the original did not
  have; same index and columns, each cell the error label of that value (``none``, ``negative``, ...).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from simulator.dataset.plan import Chunk
from simulator.dataset.table import CodeColumn, FloatColumn, IntColumn, Table, TimeColumn
from simulator.meters.faults import CHANNELS, LABELS

CLEAN: Final = "clean"
ERRORS: Final = "errors"
ERROR_TYPES: Final = "error_types"

FILE_STEMS: Final[dict[tuple[str, str], str]] = {
    ("tidy", CLEAN): "energy_data_without_errors",
    ("tidy", ERRORS): "energy_data_with_errors",
    ("seed", CLEAN): "realistic_fake_energy_data_without_errors",
    ("seed", ERRORS): "realistic_fake_energy_data_with_errors",
    ("seed", ERROR_TYPES): "realistic_fake_energy_data_error_types",
}
SEED_CHANNELS: Final = ("AC", "Geyser", "Overall")
TIDY_VALUES: Final = tuple(f"{channel}_w" for channel in CHANNELS)
TIDY_ERRORS: Final = tuple(f"{channel}_error" for channel in CHANNELS)
# Values at the meter's resolution, 0.1 W, as on the wire (config.wire): a dataset and a live meter agree exactly.
W_DECIMALS: Final = 1
KW_DECIMALS: Final = 4


def outputs(layout: str, with_errors: bool) -> tuple[str, ...]:
    """The kinds of file a layout writes: ``clean``; with errors ``errors`` (and ``error_types`` in the seed layout)."""
    if not with_errors:
        return (CLEAN,)
    return (CLEAN, ERRORS, ERROR_TYPES) if layout == "seed" else (CLEAN, ERRORS)


def file_name(layout: str, kind: str, fmt: str) -> str:
    """The file name of one output, e.g. ``energy_data_with_errors.parquet``."""
    return f"{FILE_STEMS[(layout, kind)]}.{fmt}"


def seed_columns(meter_ids: tuple[str, ...]) -> list[str]:
    """The original's value columns: ``A_AC, A_Geyser, A_Overall, B_AC, ...``."""
    return [f"{meter}_{channel}" for meter in meter_ids for channel in SEED_CHANNELS]


def tables(layout: str, chunk: Chunk, origin_s: int) -> dict[str, Table]:
    """The chunk's table for each output of ``layout`` (``origin_s``: the dataset's first second, seed row 0)."""
    return tidy_tables(chunk) if layout == "tidy" else seed_tables(chunk, origin_s)


def tidy_tables(chunk: Chunk) -> dict[str, Table]:
    """Tidy tables of one chunk: ``clean`` and, with faults, ``errors``."""
    meters, seconds = len(chunk.meter_ids), chunk.seconds
    keys = (
        TimeColumn(np.tile(np.arange(chunk.start_s, chunk.start_s + seconds, dtype=np.int64), meters)),
        CodeColumn(np.repeat(np.arange(meters, dtype=np.int32), seconds), chunk.meter_ids),
    )
    key_names = ("timestamp", "meter")
    clean = chunk.clean_kw.reshape(meters * seconds, len(CHANNELS)) * 1000.0
    result = {
        CLEAN: Table(
            key_names + TIDY_VALUES, keys + tuple(FloatColumn(clean[:, i], W_DECIMALS) for i in range(len(CHANNELS)))
        )
    }
    if chunk.values_kw is not None and chunk.codes is not None:
        values = chunk.values_kw.reshape(meters * seconds, len(CHANNELS)) * 1000.0
        codes = chunk.codes.reshape(meters * seconds, len(CHANNELS))
        result[ERRORS] = Table(
            key_names + TIDY_VALUES + TIDY_ERRORS,
            keys
            + tuple(FloatColumn(values[:, i], W_DECIMALS) for i in range(len(CHANNELS)))
            + tuple(CodeColumn(codes[:, i], LABELS) for i in range(len(CHANNELS))),
        )
    return result


def _wide(values: npt.NDArray[Any]) -> list[npt.NDArray[Any]]:
    """``(meters, seconds, channels)`` -> a ``(seconds,)`` view per column, in the original's column order."""
    meters, _, channels = values.shape
    return [values[m, :, c] for m in range(meters) for c in range(channels)]


def seed_tables(chunk: Chunk, origin_s: int) -> dict[str, Table]:
    """Seed-layout tables of one chunk (every meter of the dataset): ``clean`` and, with faults, the other two."""
    index = IntColumn(np.arange(chunk.seconds, dtype=np.int64) + (chunk.start_s - origin_s))
    names = ("", *seed_columns(chunk.meter_ids))
    result = {CLEAN: Table(names, (index, *(FloatColumn(v, KW_DECIMALS) for v in _wide(chunk.clean_kw))))}
    if chunk.values_kw is not None and chunk.codes is not None:
        result[ERRORS] = Table(names, (index, *(FloatColumn(v, KW_DECIMALS) for v in _wide(chunk.values_kw))))
        result[ERROR_TYPES] = Table(names, (index, *(CodeColumn(c, LABELS) for c in _wide(chunk.codes))))
    return result
