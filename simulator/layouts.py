"""File layouts of the batch generator: a ``dataset.Chunk`` as pyarrow tables, one per output file. Pure (no I/O).

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
import pyarrow as pa
import pyarrow.compute as pc

from simulator.dataset import Chunk
from simulator.faults import CHANNELS, LABELS, CodeArray

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
TIMESTAMP_TYPE: Final = pa.timestamp("s", tz="UTC")
# Values at the meter's resolution, 0.1 W, as on the wire (config.wire): a dataset and a live meter agree exactly.
W_DECIMALS: Final = 1
KW_DECIMALS: Final = 4

_LABELS: Final = pa.array(LABELS, type=pa.string())


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


def tables(layout: str, chunk: Chunk, origin_s: int) -> dict[str, pa.Table]:
    """The chunk's table for each output of ``layout`` (``origin_s``: the dataset's first second, seed row 0)."""
    return tidy_tables(chunk) if layout == "tidy" else seed_tables(chunk, origin_s)


def _labels(codes: CodeArray) -> pa.Array:
    return pc.take(_LABELS, pa.array(codes.astype(np.int32)))


def _floats(values: npt.NDArray[Any], decimals: int) -> pa.Array:
    rounded = np.round(np.ascontiguousarray(values, dtype=np.float64), decimals)
    return pa.array(rounded, from_pandas=True)  # NaN -> null


def tidy_tables(chunk: Chunk) -> dict[str, pa.Table]:
    """Tidy tables of one chunk: ``clean`` and, with faults, ``errors``."""
    meters, seconds = len(chunk.meter_ids), chunk.seconds
    ts = np.tile(np.arange(chunk.start_s, chunk.start_s + seconds, dtype=np.int64), meters)
    which = pa.array(np.repeat(np.arange(meters, dtype=np.int32), seconds))
    keys = {
        "timestamp": pa.array(ts, type=TIMESTAMP_TYPE),
        "meter": pc.take(pa.array(chunk.meter_ids, type=pa.string()), which),
    }
    clean = chunk.clean_kw.reshape(meters * seconds, len(CHANNELS)) * 1000.0
    result = {
        CLEAN: pa.table({**keys, **{name: _floats(clean[:, i], W_DECIMALS) for i, name in enumerate(TIDY_VALUES)}})
    }
    if chunk.values_kw is not None and chunk.codes is not None:
        values = chunk.values_kw.reshape(meters * seconds, len(CHANNELS)) * 1000.0
        codes = chunk.codes.reshape(meters * seconds, len(CHANNELS))
        result[ERRORS] = pa.table(
            {
                **keys,
                **{name: _floats(values[:, i], W_DECIMALS) for i, name in enumerate(TIDY_VALUES)},
                **{name: _labels(codes[:, i]) for i, name in enumerate(TIDY_ERRORS)},
            }
        )
    return result


def _wide(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``(meters, seconds, channels)`` -> ``(seconds, meters * channels)``: the original's column order."""
    meters, seconds, channels = values.shape
    return values.transpose(1, 0, 2).reshape(seconds, meters * channels)


def seed_tables(chunk: Chunk, origin_s: int) -> dict[str, pa.Table]:
    """Seed-layout tables of one chunk (every meter of the dataset): ``clean`` and, with faults, the other two."""
    index = {"": pa.array(np.arange(chunk.seconds, dtype=np.int64) + (chunk.start_s - origin_s))}
    names = seed_columns(chunk.meter_ids)
    clean = _wide(chunk.clean_kw)
    result = {CLEAN: pa.table({**index, **{name: _floats(clean[:, i], KW_DECIMALS) for i, name in enumerate(names)}})}
    if chunk.values_kw is not None and chunk.codes is not None:
        values, codes = _wide(chunk.values_kw), _wide(chunk.codes)
        result[ERRORS] = pa.table(
            {**index, **{name: _floats(values[:, i], KW_DECIMALS) for i, name in enumerate(names)}}
        )
        result[ERROR_TYPES] = pa.table({**index, **{name: _labels(codes[:, i]) for i, name in enumerate(names)}})
    return result
