"""CSV text of a table's columns, built with numpy in bulk: no Python per row or per value. Pure (no I/O).

The text is the one the generator has always written (pyarrow's CSV writer with the writers' float rule): floats in
the shortest form that reads back exactly, always with a decimal point or an exponent (``0.0``, ``-0.0``, ``2.7927``,
``1e+22``); NaN empty; timestamps ``2024-01-01 00:00:00Z``; integers and labels as they are.

How: every value becomes a *cell*, its text followed by its separator (``,``, or ``\\n`` at the end of a line), at most
16 bytes, held as two little-endian 64-bit words (text left-aligned, zero bytes after it) and a length. Texts come
from lookup tables (the digits of ``0..9999``, ``k / 10**d`` for small ``k``, the fractions ``.0`` to ``.9999``, the
minutes and seconds of a day) and 64-bit shifts. A column of two values (an appliance on or off) is *coded* instead:
a 0/1 per row into its two texts; neighbouring coded columns become one code into the texts of each pair, looked up
once and put in front of the next cell. ``join`` lays a table's cells end to end in one buffer, a column at a time: one
indexed assignment stores a column's cells at their offsets (from the cumulative sum of the row lengths).
``counted_lines`` and ``splice`` make a file that differs from another only on some lines (the seed layout's with-errors
and error-types files) by copying the rest.

``float_text`` and ``reference_text`` are the same text, one value at a time: the fallback for values the tables do
not cover (1e9 and beyond, infinities, texts over 16 bytes), and the reference the tests compare ``join`` against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from simulator.dataset.table import CodeColumn, Column, FloatColumn, IntColumn, Table

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

CELL_BYTES: Final = 16
FIXED_LIMIT: Final = 1e9  # |value| below this: sign, 9 digits, point, 4 decimals and separator fit in 16 bytes
INT_TABLE: Final = 10_000  # the digits of 0..9,999 are looked up; larger integers are split in two
_EPOCH_ORDINAL: Final = 719_163  # date(1970, 1, 1).toordinal()


class Cells(NamedTuple):
    """One column's cells: ``lo``, ``hi`` the 16 text bytes as two little-endian words, ``n`` the length in bytes."""

    lo: U64
    hi: U64
    n: I64


class Coded(NamedTuple):
    """A column of few distinct texts (an appliance's on and off): ``texts`` and each row's index ``codes`` into it."""

    codes: npt.NDArray[np.uint8]
    texts: Cells


def _word(text: bytes) -> int:
    return int.from_bytes(text.ljust(8, b"\0")[:8], "little")


def _append(cells: Cells, word: U64, n: I64) -> Cells:
    """``cells`` followed by ``word``'s first ``n`` bytes (``cells.n + n <= 16``; ``word`` zero past ``n``).

    numpy shifts a 64-bit word by 64 or more to 0, and ``64 - s`` wraps around for ``s > 64``: so the three shifts need
    no branch whichever word the appended bytes land in.
    """
    s = cells.n.astype(np.uint64)
    s <<= np.uint64(3)
    lo = word << s
    lo |= cells.lo
    if int(cells.n.max(initial=0)) < 8:  # every appended text starts in the low word: no third shift (in place)
        np.subtract(np.uint64(64), s, out=s)
        hi: U64 = word >> s
    else:
        hi = word >> (np.uint64(64) - s)
        hi |= word << (s - np.uint64(64))
    hi |= cells.hi
    return Cells(lo, hi, cells.n + n)


def _uint_digits(values: I64) -> Cells:
    """Decimal digits of non-negative integers below 10**16, computed digit by digit (for tables and rare values)."""
    values = np.asarray(values, dtype=np.int64)
    n = np.searchsorted(_POWERS, values, side="right").astype(np.int64)  # digits: 1 + how many of 10..10**15 <= v
    n = np.maximum(n, 1)
    lo = np.zeros(len(values), dtype=np.uint64)
    hi = np.zeros(len(values), dtype=np.uint64)
    for j in range(int(n.max(initial=1))):  # digit j from the right lands at byte n - 1 - j
        digit = ((values // 10**j) % 10 + 48).astype(np.uint64)
        at = n - 1 - j
        lo |= np.where((at >= 0) & (at < 8), digit << (np.clip(at, 0, 7).astype(np.uint64) * np.uint64(8)), 0)
        hi |= np.where(at >= 8, digit << (np.clip(at - 8, 0, 7).astype(np.uint64) * np.uint64(8)), 0)
    return Cells(lo, hi, n)


_POWERS: Final = np.array([1] + [10**p for p in range(1, 16)], dtype=np.int64)
_tables: dict[str, Cells] = {}


def _ints() -> Cells:
    """The digits of ``0 .. INT_TABLE - 1``, built once: the four zero-padded digits without their leading zeros."""
    if "ints" not in _tables:
        n = np.full(INT_TABLE, 4, dtype=np.int64)
        n[:1000], n[:100], n[:10] = 3, 2, 1
        lo = _pad4() >> ((4 - n).astype(np.uint64) << np.uint64(3))
        _tables["ints"] = Cells(lo, np.zeros(INT_TABLE, dtype=np.uint64), n)
    return _tables["ints"]


def _padded(values: I64, width: int) -> U64:
    """``width`` (<= 8) zero-padded digits of each value, as a word."""
    word = np.zeros(len(values), dtype=np.uint64)
    for i in range(width):  # byte i holds the digit of 10**(width - 1 - i)
        digit = (values // 10 ** (width - 1 - i)) % 10 + 48
        word |= digit.astype(np.uint64) << np.uint64(8 * i)
    return word


def _pad4() -> U64:
    """Four zero-padded digits of ``0 .. 9999``, built once."""
    if "pad4" not in _tables:
        values = np.arange(10_000, dtype=np.int64)
        _tables["pad4"] = Cells(_padded(values, 4), np.zeros(10_000, dtype=np.uint64), np.full(10_000, 4))
    return _tables["pad4"].lo


def _take(table: Cells, index: npt.NDArray[np.intp] | I64) -> Cells:
    """``table``'s cells at ``index`` (``take``: a little faster than indexing with an array)."""
    return Cells(table.lo.take(index), table.hi.take(index), table.n.take(index))


def _counted_cells(first: int, count: int, sep: bytes) -> Cells | None:
    """``first .. first + count - 1`` + a one-byte separator (a row index), a run of up to 10,000 numbers with the
    same high digits at a time: their low four digits are a slice of a table, shifted past the high digits; no
    division or lookup per number. None beyond 10**7 - 1 (more than 8 bytes) or for another separator."""
    if len(sep) != 1 or first < 0 or first + count > 10**7:
        return None
    ints = _ints()
    tail_key, small_key = f"pad4 {sep!r}", f"ints {sep!r}"
    if tail_key not in _tables:  # four zero-padded digits + separator; the digits of 0..9,999 + separator
        word = np.uint64(_word(sep))
        _tables[tail_key] = Cells(_pad4() | (word << np.uint64(32)), ints.hi, np.full(INT_TABLE, 5))
        _tables[small_key] = _append(ints, np.full(INT_TABLE, word), np.ones(INT_TABLE, dtype=np.int64))
    tail, small = _tables[tail_key], _tables[small_key]
    lo = np.empty(count, dtype=np.uint64)
    n = np.empty(count, dtype=np.int64)
    at = 0
    while at < count:
        high, low = divmod(first + at, INT_TABLE)
        size = min(count - at, INT_TABLE - low)
        if high == 0:
            lo[at : at + size] = small.lo[low : low + size]
            n[at : at + size] = small.n[low : low + size]
        else:  # the high digits (at most 3), then the low four and the separator
            np.left_shift(tail.lo[low : low + size], np.uint64(8 * int(ints.n[high])), out=lo[at : at + size])
            lo[at : at + size] |= ints.lo[high]
            n[at : at + size] = int(ints.n[high]) + 5
        at += size
    return Cells(lo, np.zeros(count, dtype=np.uint64), n)


def uint_cells(values: I64, sep: bytes) -> Cells:
    """Non-negative integers below 10**15 (the seed layout's row index) + separator."""
    values = np.asarray(values, dtype=np.int64)
    top = int(values.max(initial=0))
    if top < INT_TABLE:
        cells = _take(_ints(), values)
    elif top < INT_TABLE * 10_000:  # high digits looked up, then four zero-padded low digits: at most 8 bytes
        high, low = np.divmod(values, 10_000)
        ints = _ints()
        size = ints.n[high]
        long = high > 0
        cells = Cells(
            np.where(long, ints.lo[high] | (_pad4()[low] << (size.astype(np.uint64) * np.uint64(8))), ints.lo[low]),
            np.zeros(len(values), dtype=np.uint64),
            np.where(long, size + 4, ints.n[low]),
        )
    else:
        cells = _uint_digits(values)
    if not sep:
        return cells
    return _append(cells, np.full(len(values), _word(sep), dtype=np.uint64), np.full(len(values), len(sep)))


def _fractions(decimals: int, sep: bytes) -> Cells:
    """``.f`` + separator for ``f`` in ``0 .. 10**decimals - 1``: one digit at least, no trailing zeros (``.5``)."""
    key = f"fractions {decimals} {sep!r}"
    if key not in _tables:
        f = np.arange(10**decimals, dtype=np.int64)
        digits = _padded(f, decimals)  # decimals <= 7: with the point and the separator, one word
        kept = np.full(len(f), decimals, dtype=np.int64)
        for place in range(1, decimals):  # trailing zeros dropped, one digit kept
            kept -= (f % 10**place == 0) & (kept == decimals - place + 1)
        digits &= (np.uint64(1) << (kept.astype(np.uint64) * np.uint64(8))) - np.uint64(1)
        word = np.uint64(ord(".")) | (digits << np.uint64(8))
        word |= np.uint64(_word(sep)) << ((kept + 1).astype(np.uint64) * np.uint64(8))
        _tables[key] = Cells(word, np.zeros(len(f), dtype=np.uint64), kept + 1 + len(sep))
    return _tables[key]


FIXED_TABLE: Final = 1 << 16  # the texts of k / 10**d for k below this are looked up whole (6.5536 kW, 6,553.6 W)


def _compose(k: I64, decimals: int, sep: bytes) -> Cells:
    """The text of ``k / 10**decimals`` (``k >= 0``) + separator, from its integer part and its fraction."""
    whole, fraction = np.divmod(k, 10**decimals)
    head = uint_cells(whole, b"")
    tail = _take(_fractions(decimals, sep), fraction)
    return _append(head, tail.lo, tail.n)


def _fixed(decimals: int, sep: bytes, size: int) -> Cells:
    """The texts of ``k / 10**decimals`` + separator for ``k`` in ``0 .. size - 1`` (at least), built once.

    With 1 to 4 decimals the table is built whole (``FIXED_TABLE`` texts and up to the next whole number) at once, as
    ``_compose`` would, without its division and lookups: ``k``'s integer part and fraction are a repeat and a tile of
    the two tables."""
    key = f"fixed {decimals} {sep!r}"
    table = _tables.get(key)
    if table is None or len(table.n) < size:
        unit = 10**decimals
        if decimals >= 1 and unit <= FIXED_TABLE:  # integer parts below FIXED_TABLE / 10 < INT_TABLE
            wholes, fractions = -(-FIXED_TABLE // unit), _fractions(decimals, sep)
            ints = _ints()
            zeros = np.zeros(wholes * unit, dtype=np.uint64)
            head = Cells(np.repeat(ints.lo[:wholes], unit), zeros, np.repeat(ints.n[:wholes], unit))
            table = _append(head, np.tile(fractions.lo, wholes), np.tile(fractions.n, wholes))
        else:
            table = _compose(np.arange(max(size, 1024), dtype=np.int64), decimals, sep)
        _tables[key] = table
    return table


_narrow_tables: dict[int, tuple[Cells, bool]] = {}


def _narrow(table: Cells) -> bool:
    """Whether every text of ``table`` (built once, kept in ``_tables``) fits in its low word."""
    known = _narrow_tables.get(id(table))
    if known is None or known[0] is not table:
        known = (table, int(table.n.max(initial=0)) <= 8)
        _narrow_tables[id(table)] = known
    return known[1]


def fixed_cells(values: FloatArray, decimals: int, sep: bytes) -> Cells | None:
    """Floats rounded to ``decimals`` (as ``numpy.round``); None if one is not finite or ``|v| >= FIXED_LIMIT``.

    ``numpy.round(v, d)`` is ``rint(v * 10**d) / 10**d``, the double nearest ``k / 10**d``, whose shortest text is the
    digits of ``k`` with the point ``d`` places from the right, trailing zeros dropped: so the text is built from the
    integer ``k`` (looked up whole for small ``k``), and a value that rounds to ``-0.0`` keeps its sign.
    """
    scaled = np.asarray(values, dtype=np.float64) * (10.0**decimals)
    np.rint(scaled, out=scaled)
    if scaled.size:  # the common case in two reductions: no NaN (max is not NaN), no sign bit set (-0.0 included)
        top = float(scaled.max())
        if 0 <= top < FIXED_TABLE and int(scaled.view(np.int64).min()) >= 0:
            table = _fixed(decimals, sep, int(top) + 1)
            k = scaled.astype(np.int64)
            if _narrow(table):  # texts of at most 8 bytes: the high words are zeros (calloc'ed: no pass)
                return Cells(table.lo.take(k), np.zeros(len(k), dtype=np.uint64), table.n.take(k))
            return _take(table, k)
    magnitude = np.abs(scaled)
    missing = np.isnan(scaled)
    has_missing = bool(missing.any())
    if has_missing:
        magnitude[missing] = 0.0
    top = float(magnitude.max(initial=0.0))
    if not top < FIXED_LIMIT * 10**decimals:
        return None
    k = magnitude.astype(np.int64)
    table = _fixed(decimals, sep, min(int(top) + 1, FIXED_TABLE))
    if top < len(table.n):
        cells = _take(table, k)
    else:  # a few large values (spikes): looked up clipped, then composed
        cells = _take(table, np.minimum(k, len(table.n) - 1))
        large = np.flatnonzero(k >= len(table.n))
        big = _compose(k[large], decimals, sep)
        cells.lo[large], cells.hi[large], cells.n[large] = big
    negative = np.flatnonzero(np.signbit(scaled) & ~missing)
    if negative.size:  # prepend "-" to the negative values
        lo, hi = cells.lo[negative], cells.hi[negative]
        cells.hi[negative] = (hi << np.uint64(8)) | (lo >> np.uint64(56))
        cells.lo[negative] = (lo << np.uint64(8)) | np.uint64(ord("-"))
        cells.n[negative] += 1
    if has_missing:
        cells.lo[missing] = _word(sep)
        cells.hi[missing] = 0
        cells.n[missing] = 1
    return cells


def category_cells(codes: npt.NDArray[np.integer], texts: Sequence[str], sep: bytes) -> Cells | None:
    """``texts[code]`` for each code (meter ids, error labels); None if a text is over 15 bytes."""
    encoded = [t.encode() + sep for t in texts]
    if any(len(t) > CELL_BYTES for t in encoded):
        return None
    lo = np.array([_word(t) for t in encoded], dtype=np.uint64)
    hi = np.array([_word(t[8:]) for t in encoded], dtype=np.uint64)
    return _take(Cells(lo, hi, np.array([len(t) for t in encoded], dtype=np.int64)), np.asarray(codes, dtype=np.intp))


_clock_tables: dict[bytes, tuple[U64, U64]] = {}


def _clock(sep: bytes) -> tuple[U64, U64]:
    """`` HH:MM`` of each minute of the day (at bytes 2-7 of a word) and ``:SSZ`` + separator of each second."""
    if sep not in _clock_tables:
        minutes = np.array([_word(f"\0\0 {m // 60:02d}:{m % 60:02d}".encode()) for m in range(1440)], dtype=np.uint64)
        seconds = np.array([_word(f":{s:02d}Z".encode() + sep) for s in range(60)], dtype=np.uint64)
        _clock_tables[sep] = (minutes, seconds)
    return _clock_tables[sep]


def timestamp_cells(epoch_s: I64, sep: bytes) -> list[Cells]:
    """UTC seconds as ``YYYY-MM-DD HH:MM:SSZ``: two cells, ``YYYY-MM-DD HH:MM`` and ``:SSZ`` + separator."""
    epoch_s = np.asarray(epoch_s, dtype=np.int64)
    day, second = np.divmod(epoch_s, 86_400)
    first, last = (int(day.min()), int(day.max())) if len(day) else (0, 0)
    dates = [datetime.fromordinal(_EPOCH_ORDINAL + d).date().isoformat().encode() for d in range(first, last + 1)]
    months = np.array([_word(text[:8]) for text in dates], dtype=np.uint64)  # "YYYY-MM-"
    days = np.array([_word(text[8:10]) for text in dates], dtype=np.uint64)  # "DD"
    minutes, seconds = _clock(sep)
    which = day - first
    size = len(epoch_s)
    head = Cells(months[which], days[which] | minutes[second // 60], np.full(size, 16, dtype=np.int64))
    tail = Cells(seconds[second % 60], np.zeros(size, dtype=np.uint64), np.full(size, 4 + len(sep), dtype=np.int64))
    return [head, tail]


FEW_ROWS: Final = 1024  # below this many rows a column is not looked at for few distinct values


def _two_valued(values: FloatArray, decimals: int, sep: bytes) -> Coded | None:
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
    return _take(column.texts, column.codes.astype(np.intp))


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
            merged[-1] = _append(last, cells.lo, cells.n) if not cells.hi.any() else _append2(last, cells)
        else:
            merged.append(cells)
    return merged


def _append2(first: Cells, second: Cells) -> Cells:
    """``first`` followed by ``second`` (both words of it; together at most 16 bytes)."""
    joined = _append(first, second.lo, np.minimum(second.n, 8))
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
        cells = _two_valued(column.values, column.decimals, sep) or fixed_cells(column.values, column.decimals, sep)
    elif isinstance(column, IntColumn):
        values = np.asarray(column.values, dtype=np.int64)
        first, count = (int(values[0]), len(values)) if values.size else (0, 0)
        cells = None
        if count and int(values[-1]) == first + count - 1 and np.array_equal(values, np.arange(first, first + count)):
            cells = _counted_cells(first, count, sep)  # a row index: 0, 1, 2, ...
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
            pad4, at = _pad4(), 0
            while at < rows:  # a run of equal high four digits at a time: the low four are a slice of the table
                high4, low4 = divmod(low + at, 10_000)
                run = min(rows - at, 10_000 - low4)
                np.left_shift(pad4[low4 : low4 + run], np.uint64(32), out=digits[at : at + run])
                digits[at : at + run] |= pad4[high4]
                at += run
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
