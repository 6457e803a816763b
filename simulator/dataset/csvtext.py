"""CSV text of a table's columns, built with numpy in bulk: no Python per row or per value. Pure (no I/O).

The text is the one the generator has always written (pyarrow's CSV writer with the writers' float rule): floats in
the shortest form that reads back exactly, always with a decimal point or an exponent (``0.0``, ``-0.0``, ``2.7927``,
``1e+22``); NaN empty; timestamps ``2024-01-01 00:00:00Z``; integers and labels as they are.

How: every value becomes a *cell* of at most 16 bytes, its text and separator as two 64-bit words, from lookup tables
(``simulator.dataset.cells``); two-valued columns are coded, and ``join`` lays a table's cells end to end in one buffer
(``simulator.dataset.lines``, which also has ``counted_lines`` and ``splice`` for files that differ from another only
on some lines). ``table_lines`` picks each column's cells and joins them.

``float_text`` and ``reference_text`` are the same text, one value at a time: the fallback for values the tables do
not cover (1e9 and beyond, infinities, texts over 16 bytes), and the reference the tests compare ``join`` against.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from simulator.dataset.cells import (
    Cells,
    Coded,
    category_cells,
    counted_cells,
    fixed_cells,
    timestamp_cells,
    uint_cells,
)
from simulator.dataset.lines import Lines, join, two_valued
from simulator.dataset.table import CodeColumn, Column, FloatColumn, IntColumn, Table


def float_text(value: float) -> str:
    """One float's text, as pyarrow casts a double to a string, then ``.0`` added to a whole number (NaN: empty).

    pyarrow writes the shortest digits that read back exactly; in plain notation for ``1e-6 <= |v| < 1e10``, else
    as ``d.ddde+XX`` / ``de-X`` (no padding of the exponent).
    """
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return f"{sign}0.0"
    from decimal import Decimal  # the fallback's only: not imported by a run the tables cover

    digits_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_tuple))
    assert isinstance(exponent, int)
    scientific = len(digits) + exponent - 1
    if not -6 <= scientific < 10:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if scientific >= 0 else '-'}{abs(scientific)}"
    if exponent >= 0:
        return f"{sign}{digits}{'0' * exponent}.0"
    point = len(digits) + exponent
    if point > 0:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}0.{'0' * -point}{digits}"


def timestamp_text(epoch_s: int) -> str:
    """One UTC second as ``YYYY-MM-DD HH:MM:SSZ``."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return f"{moment.date().isoformat()} {moment:%H:%M:%S}Z"


def column_cells(column: Column, sep: bytes) -> list[Cells | Coded] | None:
    """A column's cells (two for a timestamp; coded if it has two values); None if a value is outside what the
    tables cover."""
    cells: Cells | Coded | None
    if isinstance(column, FloatColumn):
        cells = two_valued(column.values, column.decimals, sep) or fixed_cells(column.values, column.decimals, sep)
    elif isinstance(column, IntColumn):
        values = np.asarray(column.values, dtype=np.int64)
        first, count = (int(values[0]), len(values)) if values.size else (0, 0)
        cells = None
        if count and int(values[-1]) == first + count - 1 and np.array_equal(values, np.arange(first, first + count)):
            cells = counted_cells(first, count, sep)  # a row index: 0, 1, 2, ...
        if cells is None:
            cells = uint_cells(values, sep) if not values.size or 0 <= values.min() <= values.max() < 10**15 else None
    elif isinstance(column, CodeColumn):
        cells = category_cells(column.codes, column.texts, sep)
    else:
        stamps: list[Cells | Coded] = [*timestamp_cells(column.epoch_s, sep)]
        return stamps
    return None if cells is None else [cells]


def table_lines(table: Table) -> Lines:
    """The CSV lines of ``table``'s rows (no header)."""
    if table.num_rows == 0:
        return Lines(b"", np.zeros(0, dtype=np.int64))
    cells: list[Cells | Coded] = []
    for j, column in enumerate(table.columns):
        mine = column_cells(column, b"\n" if j == len(table.columns) - 1 else b",")
        if mine is None:
            return reference_lines(table)
        cells += mine
    return join(cells)


def table_text(table: Table) -> memoryview | bytes:
    """The CSV lines of ``table``'s rows (no header), as one buffer."""
    return table_lines(table).text


def _texts(column: Column) -> list[str]:
    if isinstance(column, FloatColumn):
        return [float_text(v) for v in np.round(np.asarray(column.values, dtype=np.float64), column.decimals).tolist()]
    if isinstance(column, IntColumn):
        return [str(v) for v in column.values.tolist()]
    if isinstance(column, CodeColumn):
        return [column.texts[code] for code in column.codes.tolist()]
    return [timestamp_text(t) for t in column.epoch_s.tolist()]


def reference_lines(table: Table) -> Lines:
    """``table_lines`` one value at a time, in Python: the fallback, and the tests' reference."""
    columns = [_texts(column) for column in table.columns]
    lines = [(",".join(row) + "\n").encode() for row in zip(*columns, strict=True)]
    return Lines(b"".join(lines), np.cumsum([len(line) for line in lines], dtype=np.int64))


def reference_text(table: Table) -> bytes:
    """``table_text`` one value at a time, in Python."""
    return bytes(reference_lines(table).text)
