"""Lines of CSV text: a table's cells laid end to end in one buffer (``join``), two-valued columns coded, and a file
that differs from another only on some lines (``counted_lines``, ``splice``); pure: no I/O.

A column of two values (an appliance on or off) is *coded*: a 0/1 per row into its two texts; neighbouring coded
columns become one code into the texts of each pair, looked up once and put in front of the next cell. ``join`` lays a
table's cells end to end, a column at a time: one indexed assignment stores a column's cells at their offsets (from the
cumulative sum of the row lengths). ``counted_lines`` and ``splice`` make the seed layout's with-errors and
error-types files by copying the lines they share with another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from simulator.dataset.cells import (
    CELL_BYTES,
    I64,
    U64,
    Cells,
    Coded,
    FloatArray,
    append,
    counted_runs,
    fixed_cells,
    pad4s,
    take,
)

FEW_ROWS: Final = 1024  # below this many rows a column is not looked at for few distinct values


def two_valued(values: FloatArray, decimals: int, sep: bytes) -> Coded | None:
    """A column of at most two distinct values, bit for bit, as a code per row (0: the one with the lesser bits) into
    their two texts: no lookup per row. None for any other column (most are told by their first 64 values)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < FEW_ROWS:
        return None
    head = values[:64].view(np.int64)  # bit patterns: 0.0 and -0.0 differ, as their texts do
    others = head[head != head[0]]
    if others.size and bool((others != others[0]).any()):
        return None
    bits = np.ascontiguousarray(values).view(np.int64)  # a column of a chunk is strided: one pass to copy, then fast
    low, high = int(bits.min()), int(bits.max())
    is_high = bits == high
    if low != high and np.count_nonzero(is_high) + np.count_nonzero(bits == low) != len(bits):
        return None
    texts = fixed_cells(np.array([low, high], dtype=np.int64).view(np.float64), decimals, sep)
    return None if texts is None else Coded(is_high.view(np.uint8), texts)


def _combined(first: Coded, second: Coded) -> Coded | None:
    """Two neighbouring coded columns as one (a code per pair of texts), if every pair fits in 16 bytes."""
    size_1, size_2 = len(first.texts.n), len(second.texts.n)
    if size_1 * size_2 > 256 or int(first.texts.n.max()) + int(second.texts.n.max()) > CELL_BYTES:
        return None
    pairs = _append2(_repeat(first.texts, size_2), _tile(second.texts, size_1))  # pair i * size_2 + j
    codes = first.codes * np.uint8(size_2)
    codes += second.codes
    return Coded(codes, pairs)


def _repeat(cells: Cells, times: int) -> Cells:
    return Cells(np.repeat(cells.lo, times), np.repeat(cells.hi, times), np.repeat(cells.n, times))


def _tile(cells: Cells, times: int) -> Cells:
    return Cells(np.tile(cells.lo, times), np.tile(cells.hi, times), np.tile(cells.n, times))


def _prefixed(coded: Coded, cells: Cells) -> Cells | None:
    """A coded column whose texts have one length, followed by ``cells``: shifted by that length, a constant, with
    the coded texts in front (for 8 bytes, ``1.5,0.0,``, no shift at all). None if the lengths differ or some row's
    two do not fit in 16 bytes."""
    length = int(coded.texts.n.max())
    if int(coded.texts.n.min()) != length or length + int(cells.n.max(initial=0)) > CELL_BYTES:
        return None
    index = coded.codes.astype(np.intp)  # taking with an index of bytes is twice as slow as with its copy as intp
    lo = coded.texts.lo.take(index)
    if length < 8:
        lo |= cells.lo << np.uint64(8 * length)
        hi = cells.lo >> np.uint64(64 - 8 * length)
        hi |= cells.hi << np.uint64(8 * length)  # zeros but where cells are over 8 bytes
    elif length == 8:
        hi = cells.lo  # the cells fit in 8 bytes (shared, not copied: cells are never changed in place once made)
    else:
        hi = coded.texts.hi.take(index)
        hi |= cells.lo << np.uint64(8 * (length - 8))
    return Cells(lo, hi, cells.n + length)


def _decoded(column: Cells | Coded) -> Cells:
    if isinstance(column, Cells):
        return column
    return take(column.texts, column.codes.astype(np.intp))


def _merged(columns: Sequence[Cells | Coded]) -> list[Cells]:
    """Neighbouring columns joined into one cell wherever every row's two fit in 16 bytes (``1.5,0.0,``): fewer,
    longer cells, and storing a cell costs the same whatever its length.

    Coded columns first: neighbouring ones are combined (a code per pair), and one followed by ordinary cells is put
    in front of them (``_prefixed``); then the rest, left to right."""
    staged: list[Cells | Coded] = []
    for column in columns:
        last = staged[-1] if staged else None
        joined: Cells | Coded | None = None
        if isinstance(last, Coded):
            joined = _combined(last, column) if isinstance(column, Coded) else _prefixed(last, column)
        if joined is None:
            staged.append(column)
        else:
            staged[-1] = joined
    merged = [_decoded(staged[0])]
    for cells in map(_decoded, staged[1:]):
        last = merged[-1]
        if int((last.n + cells.n).max(initial=0)) <= CELL_BYTES:
            merged[-1] = append(last, cells.lo, cells.n) if not cells.hi.any() else _append2(last, cells)
        else:
            merged.append(cells)
    return merged


def _append2(first: Cells, second: Cells) -> Cells:
    """``first`` followed by ``second`` (both words of it; together at most 16 bytes)."""
    joined = append(first, second.lo, np.minimum(second.n, 8))
    s = (first.n + 8).astype(np.uint64) * np.uint64(8)  # where second.hi's bytes start, in bits; >= 64
    return Cells(joined.lo, joined.hi | (second.hi << (s - np.uint64(64))), first.n + second.n)


class Lines(NamedTuple):
    """CSV lines as one buffer, and where each line ends in it."""

    text: memoryview | bytes
    ends: I64


def join(columns: Sequence[Cells | Coded]) -> Lines:
    """The lines of rows whose cells are ``columns`` (each one value per row), row by row, as one buffer.

    Column by column, each cell is stored as 16 bytes at its offset: its text, then zeros that the cells after it in
    the row overwrite later. A cell less than 16 bytes from its row's end (the last of a row, or all of a short row) is
    stored with exactly its length instead, so nothing is ever stored past a row's end: no two stores of one assignment
    overlap, and the result does not depend on the order in which numpy carries out an assignment.
    """
    columns = _merged(columns)
    row_sizes = np.sum([cells.n for cells in columns], axis=0)
    ends = np.cumsum(row_sizes)
    total = int(ends[-1])
    buffer = np.empty(total + CELL_BYTES, dtype=np.uint8)
    windows = np.ndarray((total + 1,), dtype=np.dtype("V16"), buffer=buffer, strides=(1,))  # one per byte offset
    at = ends - row_sizes  # where each row's next cell starts
    for j, cells in enumerate(columns):
        if j == len(columns) - 1 and _store_last(buffer, ends, row_sizes, cells):
            break
        words = np.stack((cells.lo, cells.hi), axis=1)
        far = ends - at >= CELL_BYTES
        if far.all():
            windows[at] = words.view(np.dtype("V16")).reshape(-1)
        else:
            rows = np.flatnonzero(far)
            windows[at[rows]] = words[rows].view(np.dtype("V16")).reshape(-1)
            rows = np.flatnonzero(~far)
            _store_exact(buffer, at[rows], words[rows], cells.n[rows])
        at += cells.n
    return Lines(buffer.data[:total], ends)


def _store_last(buffer: npt.NDArray[np.uint8], ends: I64, row_sizes: I64, cells: Cells) -> bool:
    """Store every row's last cell as the 8 bytes that end the row, if each fits in 8 bytes and each row has 8: the
    bytes before the cell are read back (the row's earlier cells are stored already) and written again unchanged.
    One read and one store of 8 bytes per row, inside the row: no store overlaps another. False if it does not apply.
    """
    if len(ends) == 0 or int(row_sizes.min()) < 8:
        return False
    if int(cells.n.max()) > 8:
        return _store_last16(buffer, ends, row_sizes, cells)
    words = np.ndarray((len(buffer) - 7,), dtype=np.uint64, buffer=buffer, strides=(1,))  # one per byte offset
    where = ends - 8
    keep = (8 - cells.n).astype(np.uint64)
    keep <<= np.uint64(3)  # bits of the window before the cell: they stay as they are
    window = words[where]
    window &= (np.uint64(1) << keep) - np.uint64(1)
    window |= cells.lo << keep
    words[where] = window
    return True


def _store_last16(buffer: npt.NDArray[np.uint8], ends: I64, row_sizes: I64, cells: Cells) -> bool:
    """``_store_last`` for last cells of 9 to 16 bytes (``1.5,0.0,2.9537\n``), as the 16 bytes that end each row
    (two words: the first read back and kept before the cell, the second all the cell's). False unless every last
    cell is over 8 bytes and every row at least 16."""
    if int(cells.n.min()) <= 8 or int(row_sizes.min()) < CELL_BYTES:
        return False
    words = np.ndarray((len(buffer) - 7,), dtype=np.uint64, buffer=buffer, strides=(1,))  # one per byte offset
    where = ends - CELL_BYTES
    keep = (CELL_BYTES - cells.n).astype(np.uint64)
    keep <<= np.uint64(3)  # bits of the first word before the cell (0 to 56)
    first = words[where]
    first &= (np.uint64(1) << keep) - np.uint64(1)
    first |= cells.lo << keep
    second = cells.lo >> (np.uint64(64) - keep)  # numpy shifts by 64 to 0: nothing of lo when nothing is kept
    second |= cells.hi << keep
    words[where] = first
    words[where + 8] = second
    return True


def _store_exact(buffer: npt.NDArray[np.uint8], at: I64, words: U64, sizes: I64) -> None:
    """Store each cell's text (``words``, ``sizes`` bytes) at ``at`` in ``buffer``, nothing more: one store per size."""
    text = words.view(np.uint8).reshape(-1, CELL_BYTES)
    for size in np.flatnonzero(np.bincount(sizes, minlength=CELL_BYTES + 1)).tolist():
        which = np.flatnonzero(sizes == size)
        kind = np.dtype(f"V{size}")
        exact = np.ndarray((len(buffer) - size + 1,), dtype=kind, buffer=buffer, strides=(1,))
        exact[at[which]] = np.ascontiguousarray(text[which, :size]).view(kind).reshape(-1)


def counted_lines(first: int, count: int, suffix: bytes) -> Lines:
    """Lines ``k`` + ``suffix`` for ``k`` in ``first .. first + count - 1`` (a row index and constant cells), in one
    buffer: the lines of each run of equal width are rows of a byte matrix, filled a column of words at a time."""
    stop = first + count
    widths: list[tuple[int, int, int]] = []  # (first k, last k + 1, digits) of each run of equal width
    low = first
    while low < stop:
        width = len(str(low))
        widths.append((low, min(stop, 10**width), width))
        low = widths[-1][1]
    total = sum((high - low) * (width + len(suffix)) for low, high, width in widths)
    buffer = np.empty(total + 8, dtype=np.uint8)  # 8 spare bytes: a word stored at the last line's start
    ends: list[I64] = []
    offset = 0
    for low, high, width in widths:
        size, rows = width + len(suffix), high - low
        if width <= 8 and size >= 8:  # the digits as one word, then the suffix over the word's spare bytes
            digits = np.empty(rows, dtype=np.uint64)  # 8 zero-padded digits, most significant first
            pad4 = pad4s()
            for at, high4, low4, run in counted_runs(low, rows):  # the low four digits of a run: a slice of the table
                np.left_shift(pad4[low4 : low4 + run], np.uint64(32), out=digits[at : at + run])
                digits[at : at + run] |= pad4[high4]
            digits >>= np.uint64(8 * (8 - width))
            np.ndarray((rows,), dtype=np.uint64, buffer=buffer, offset=offset, strides=(size,))[:] = digits
        else:  # rare (short lines, or 10**8 rows and more): a digit at a time
            numbers = np.arange(low, high, dtype=np.int64)
            matrix = np.ndarray((rows, width), dtype=np.uint8, buffer=buffer, offset=offset, strides=(size, 1))
            for j in range(width):
                matrix[:, width - 1 - j] = (numbers // 10**j) % 10 + 48
        if suffix:
            kind = np.dtype(f"V{len(suffix)}")
            tails = np.ndarray((rows,), dtype=kind, buffer=buffer, offset=offset + width, strides=(size,))
            tails[:] = np.frombuffer(suffix, dtype=kind)[0]
        ends.append(offset + size * np.arange(1, rows + 1, dtype=np.int64))
        offset += size * rows
    return Lines(buffer.data[:total], np.concatenate(ends) if ends else np.zeros(0, dtype=np.int64))


def splice(base: Lines, rows: npt.NDArray[np.intp], replacement: Lines) -> memoryview | bytes:
    """``base`` with its lines ``rows`` (ascending) replaced by the lines of ``replacement``, in order."""
    return b"".join(splice_parts(base, rows, replacement))


def splice_parts(base: Lines, rows: npt.NDArray[np.intp], replacement: Lines) -> list[memoryview | bytes]:
    """``splice``'s text as the pieces to join: ``base`` up to the first replaced line, that line's replacement,
    ``base`` from the next line up to the next replaced line, ... (two list comprehensions of slices: the fastest
    Python way to make them, ~0.1 us a slice)."""
    if not len(rows):
        return [base.text]
    text, new = memoryview(base.text), memoryview(replacement.text)
    keep_starts = np.empty(len(rows) + 1, dtype=np.int64)  # the kept runs of base: [stop of the last replaced, start)
    keep_starts[0] = 0
    keep_starts[1:] = base.ends[rows]
    keep_stops = np.empty(len(rows) + 1, dtype=np.int64)
    keep_stops[:-1] = np.where(rows > 0, base.ends[rows - 1], 0)  # where each replaced line starts
    keep_stops[-1] = len(text)
    new_starts = np.empty(len(rows), dtype=np.int64)
    new_starts[0] = 0
    new_starts[1:] = replacement.ends[:-1]
    parts: list[memoryview | bytes] = [text] * (2 * len(rows) + 1)
    parts[0::2] = [text[start:stop] for start, stop in zip(keep_starts.tolist(), keep_stops.tolist(), strict=True)]
    parts[1::2] = [new[start:stop] for start, stop in zip(new_starts.tolist(), replacement.ends.tolist(), strict=True)]
    return parts
