"""A generated table: named, typed columns of numpy arrays, one value per row. What ``layouts`` builds from a chunk
and ``writers`` turn into CSV text (``csvtext``) or Parquet. Pure (no I/O).

Column types say how a value is written: ``FloatColumn`` rounded to ``decimals`` (NaN: missing), ``IntColumn``,
``CodeColumn`` (``texts[code]``: meter ids, error labels), ``TimeColumn`` (UTC epoch seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class FloatColumn:
    """Floats written rounded to ``decimals`` places; NaN is a missing value."""

    values: npt.NDArray[np.float64]
    decimals: int


@dataclass(frozen=True, slots=True)
class IntColumn:
    """Non-negative integers."""

    values: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class CodeColumn:
    """Strings from a few: value ``i`` is ``texts[codes[i]]``."""

    codes: npt.NDArray[np.integer]
    texts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TimeColumn:
    """Instants, as UTC epoch seconds."""

    epoch_s: npt.NDArray[np.int64]


Column = FloatColumn | IntColumn | CodeColumn | TimeColumn


@dataclass(frozen=True, slots=True)
class Table:
    """Columns of equal length, with their names."""

    names: tuple[str, ...]
    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.columns):
            raise ValueError(f"{len(self.names)} names for {len(self.columns)} columns")
        if len({len(_values(c)) for c in self.columns}) > 1:
            raise ValueError("columns of different lengths")

    def take(self, rows: npt.NDArray[np.intp]) -> Table:
        """The table of ``rows`` only."""
        return Table(self.names, tuple(_take(column, rows) for column in self.columns))

    @property
    def num_rows(self) -> int:
        """Rows in the table."""
        return len(_values(self.columns[0])) if self.columns else 0


def _values(column: Column) -> npt.NDArray[np.generic]:
    if isinstance(column, FloatColumn | IntColumn):
        return column.values
    if isinstance(column, CodeColumn):
        return column.codes
    return column.epoch_s


def _take(column: Column, rows: npt.NDArray[np.intp]) -> Column:
    if isinstance(column, FloatColumn):
        return FloatColumn(column.values[rows], column.decimals)
    if isinstance(column, IntColumn):
        return IntColumn(column.values[rows])
    if isinstance(column, CodeColumn):
        return CodeColumn(column.codes[rows], column.texts)
    return TimeColumn(column.epoch_s[rows])
