"""Cells: the CSV text of each value of a column, built with numpy in bulk from lookup tables (pure: no I/O).

A cell is a value's text followed by its separator (``,``, or ``\\n`` at the end of a line), at most 16 bytes, held as
two little-endian 64-bit words (text left-aligned, zero bytes after it) and a length. Texts come from lookup tables
(the digits of ``0..9999``, ``k / 10**d`` for small ``k``, the fractions ``.0`` to ``.9999``, the minutes and seconds
of a day) and 64-bit shifts: integers (``uint_cells``, ``counted_cells``), fixed-point floats (``fixed_cells``), labels
(``category_cells``) and timestamps (``timestamp_cells``). ``simulator.dataset.lines`` lays cells end to end.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

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


def append(cells: Cells, word: U64, n: I64) -> Cells:
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
        lo = pad4s() >> ((4 - n).astype(np.uint64) << np.uint64(3))
        _tables["ints"] = Cells(lo, np.zeros(INT_TABLE, dtype=np.uint64), n)
    return _tables["ints"]


def _padded(values: I64, width: int) -> U64:
    """``width`` (<= 8) zero-padded digits of each value, as a word."""
    word = np.zeros(len(values), dtype=np.uint64)
    for i in range(width):  # byte i holds the digit of 10**(width - 1 - i)
        digit = (values // 10 ** (width - 1 - i)) % 10 + 48
        word |= digit.astype(np.uint64) << np.uint64(8 * i)
    return word


def pad4s() -> U64:
    """Four zero-padded digits of ``0 .. 9999``, built once."""
    if "pad4" not in _tables:
        values = np.arange(10_000, dtype=np.int64)
        _tables["pad4"] = Cells(_padded(values, 4), np.zeros(10_000, dtype=np.uint64), np.full(10_000, 4))
    return _tables["pad4"].lo


def take(table: Cells, index: npt.NDArray[np.intp] | I64) -> Cells:
    """``table``'s cells at ``index`` (``take``: a little faster than indexing with an array)."""
    return Cells(table.lo.take(index), table.hi.take(index), table.n.take(index))


def counted_runs(first: int, count: int) -> Iterator[tuple[int, int, int, int]]:
    """The numbers ``first .. first + count - 1`` as runs of up to 10,000 with the same high digits (all but the low
    four): ``(at, high, low, size)``, numbers ``first + at ..`` of ``size``, the first being ``high * 10_000 + low``."""
    at = 0
    while at < count:
        high, low = divmod(first + at, INT_TABLE)
        size = min(count - at, INT_TABLE - low)
        yield at, high, low, size
        at += size


def counted_cells(first: int, count: int, sep: bytes) -> Cells | None:
    """``first .. first + count - 1`` + a one-byte separator (a row index), a run of up to 10,000 numbers with the
    same high digits at a time: their low four digits are a slice of a table, shifted past the high digits; no
    division or lookup per number. None beyond 10**7 - 1 (more than 8 bytes) or for another separator."""
    if len(sep) != 1 or first < 0 or first + count > 10**7:
        return None
    ints = _ints()
    tail_key, small_key = f"pad4 {sep!r}", f"ints {sep!r}"
    if tail_key not in _tables:  # four zero-padded digits + separator; the digits of 0..9,999 + separator
        word = np.uint64(_word(sep))
        _tables[tail_key] = Cells(pad4s() | (word << np.uint64(32)), ints.hi, np.full(INT_TABLE, 5))
        _tables[small_key] = append(ints, np.full(INT_TABLE, word), np.ones(INT_TABLE, dtype=np.int64))
    tail, small = _tables[tail_key], _tables[small_key]
    lo = np.empty(count, dtype=np.uint64)
    n = np.empty(count, dtype=np.int64)
    for at, high, low, size in counted_runs(first, count):
        if high == 0:
            lo[at : at + size] = small.lo[low : low + size]
            n[at : at + size] = small.n[low : low + size]
        else:  # the high digits (at most 3), then the low four and the separator
            np.left_shift(tail.lo[low : low + size], np.uint64(8 * int(ints.n[high])), out=lo[at : at + size])
            lo[at : at + size] |= ints.lo[high]
            n[at : at + size] = int(ints.n[high]) + 5
    return Cells(lo, np.zeros(count, dtype=np.uint64), n)


def uint_cells(values: I64, sep: bytes) -> Cells:
    """Non-negative integers below 10**15 (the seed layout's row index) + separator."""
    values = np.asarray(values, dtype=np.int64)
    top = int(values.max(initial=0))
    if top < INT_TABLE:
        cells = take(_ints(), values)
    elif top < INT_TABLE * 10_000:  # high digits looked up, then four zero-padded low digits: at most 8 bytes
        high, low = np.divmod(values, 10_000)
        ints = _ints()
        size = ints.n[high]
        long = high > 0
        cells = Cells(
            np.where(long, ints.lo[high] | (pad4s()[low] << (size.astype(np.uint64) * np.uint64(8))), ints.lo[low]),
            np.zeros(len(values), dtype=np.uint64),
            np.where(long, size + 4, ints.n[low]),
        )
    else:
        cells = _uint_digits(values)
    if not sep:
        return cells
    return append(cells, np.full(len(values), _word(sep), dtype=np.uint64), np.full(len(values), len(sep)))


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
    tail = take(_fractions(decimals, sep), fraction)
    return append(head, tail.lo, tail.n)


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
            table = append(head, np.tile(fractions.lo, wholes), np.tile(fractions.n, wholes))
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
            return take(table, k)
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
        cells = take(table, k)
    else:  # a few large values (spikes): looked up clipped, then composed
        cells = take(table, np.minimum(k, len(table.n) - 1))
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
    return take(Cells(lo, hi, np.array([len(t) for t in encoded], dtype=np.int64)), np.asarray(codes, dtype=np.intp))


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
