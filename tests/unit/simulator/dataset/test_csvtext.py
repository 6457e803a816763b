"""simulator.dataset.csvtext: the bulk CSV text is exactly the value-by-value text (floats as the generator always
wrote them, pyarrow's shortest form with a decimal point), and whole datasets are byte for byte the files written
before the CSV writer moved from pyarrow to numpy (sha256 pinned from that code)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from simulator.dataset.cells import FIXED_LIMIT, FIXED_TABLE
from simulator.dataset.csvtext import float_text, reference_lines, reference_text, table_lines, table_text
from simulator.dataset.lines import counted_lines, splice
from simulator.dataset.plan import DatasetPlan
from simulator.dataset.table import CodeColumn, FloatColumn, IntColumn, Table, TimeColumn
from simulator.dataset.writers import write_dataset
from simulator.meters.faults import ALL_TYPES, LABELS, FaultConfig


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.5, "1.5"),
        (3.0, "3.0"),
        (float("nan"), ""),
        (2.734, "2.734"),
        (-12.0, "-12.0"),
        (0.0001, "0.0001"),
        (0.00005, "0.00005"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (9.9e-7, "9.9e-7"),
        (9999999999.9, "9999999999.9"),
        (9.9e9, "9900000000.0"),
        (1e10, "1e+10"),
        (-1.5e10, "-1.5e+10"),
        (123456789012.3, "1.234567890123e+11"),
        (1e22, "1e+22"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
    ],
)
def test_float_text_is_pyarrows_with_a_point(value: float, text: str) -> None:
    assert float_text(value) == text


def test_float_text_reads_back_exactly() -> None:
    rng = np.random.default_rng(1)
    numbers = np.concatenate([rng.uniform(-1e3, 1e3, 1000), 10.0 ** rng.uniform(-8, 25, 1000)])
    assert [float(float_text(v)) for v in numbers.tolist()] == numbers.tolist()


def lines(table: Table) -> list[str]:
    return bytes(table_text(table)).decode().splitlines()


@pytest.mark.parametrize("decimals", [1, 4])
def test_fixed_floats_are_the_repr_of_the_rounded_value(decimals: int) -> None:
    """Below 1e9 (and from 1e-4) Python's repr is the same text: an independent reference."""
    rng = np.random.default_rng(decimals)
    values = np.concatenate(
        [
            rng.uniform(-10, 10, 20_000),  # kW: looked up whole
            rng.uniform(0, 70_000, 20_000),  # W: partly beyond FIXED_TABLE / 10**1
            10.0 ** rng.uniform(-3, 8.9, 5_000) * rng.choice([-1.0, 1.0], 5_000),  # spikes
            [0.0, 1.5, 3.0, 0.05, 0.00005, 0.00004, FIXED_TABLE / 10**decimals, 999_999_999.9],
        ]
    )
    rounded = np.round(values, decimals)
    expected = ["-0.0" if v == 0 and np.signbit(v) else repr(float(v)) for v in rounded]
    assert lines(Table(("x",), (FloatColumn(values, decimals),))) == expected


def random_table(rng: np.random.Generator, rows: int, scale: float) -> Table:
    values = rng.normal(0, scale, (rows, 3))
    values[rng.random((rows, 3)) < 0.1] = np.nan
    values[rng.random((rows, 3)) < 0.05] = -0.0
    values[rng.random((rows, 3)) < 0.05] *= 1000.0  # spikes
    return Table(
        ("", "t", "meter", "a", "b", "c", "error"),
        (
            IntColumn(rng.integers(0, 10**12, rows)),
            TimeColumn(rng.integers(-(10**9), 3 * 10**9, rows)),
            CodeColumn(rng.integers(0, 3, rows), ("A-0001", "B", "C-0100")),
            FloatColumn(values[:, 0], 1),
            FloatColumn(values[:, 1], 4),
            FloatColumn(values[:, 2], 1),
            CodeColumn(rng.integers(0, len(LABELS), rows), LABELS),
        ),
    )


@pytest.mark.parametrize("scale", [1.0, 3000.0, 1e7])
def test_bulk_text_is_the_value_by_value_text(scale: float) -> None:
    table = random_table(np.random.default_rng(int(scale)), 5000, scale)
    assert bytes(table_text(table)) == reference_text(table)


def test_values_beyond_the_tables_fall_back_to_the_same_text() -> None:
    values = np.array([1.0, FIXED_LIMIT, -3e12, np.inf, np.nan, 2.5])
    table = Table(("i", "x"), (IntColumn(np.arange(6)), FloatColumn(values, 4)))
    assert lines(table) == ["0,1.0", "1,1000000000.0", "2,-3e+12", "3,inf", "4,", "5,2.5"]


def test_short_rows_and_one_column() -> None:
    """Rows of one byte per cell (every value missing): each cell's stored zeros are overwritten by the next cell."""
    nan = np.full(4, np.nan)
    table = Table(("a", "b", "c"), tuple(FloatColumn(nan, 1) for _ in range(3)))
    assert bytes(table_text(table)) == b",,\n" * 4
    assert lines(Table(("i",), (IntColumn(np.array([0, 9, 10, 99_999, 100_000, 123_456_789_012])),))) == [
        "0",
        "9",
        "10",
        "99999",
        "100000",
        "123456789012",
    ]


@pytest.mark.parametrize(
    ("first", "count"),
    [(0, 25_000), (9_990, 30), (86_400, 86_400), (9_999_000, 1_000), (9_999_990, 20), (10**12, 3)],
)
@pytest.mark.parametrize("last", [False, True])
def test_a_row_index_is_the_value_by_value_text(first: int, count: int, last: bool) -> None:
    """Consecutive integers (a row index) are made a run of equal high digits at a time, up to 9,999,999."""
    index = IntColumn(np.arange(first, first + count))
    other = FloatColumn(np.linspace(0.0, 2.0, count), 4)
    table = Table(("x", "i") if last else ("i", "x"), (other, index) if last else (index, other))
    assert bytes(table_text(table)) == reference_text(table)


TWO_VALUED = {  # columns of at most two values, bit for bit: coded, combined with their neighbours, stored together
    "on_off": (0.0, 1.5),
    "geyser": (0.0, 3.0),
    "signed_zeros": (0.0, -0.0),
    "missing": (float("nan"), 2.25),
    "constant": (0.5, 0.5),
    "long": (123_456.7891, 7.0),  # texts of 12 and 4 bytes
    "spike": (0.0, 19.8276),  # beyond the whole-number table
    "equal_lengths": (1.25, 2.75),
    "wide": (1234.5678, 8765.4321),  # 10 bytes each: the cells after them start in the high word
}


@pytest.mark.parametrize(
    "layout", ["pairs_then_values", "values_between", "coded_last", "coded_only", "long_rows", "single_codes"]
)
def test_two_valued_columns_are_the_value_by_value_text(layout: str) -> None:
    rng = np.random.default_rng(len(layout))
    rows = 3000

    def two(name: str) -> FloatColumn:
        low, high = TWO_VALUED[name]
        return FloatColumn(np.where(rng.random(rows) < 0.5, low, high), 4)

    values = FloatColumn(rng.uniform(0, 7, rows), 4)
    large = FloatColumn(rng.uniform(100_000, 999_999, rows), 4)  # texts of 9 to 12 bytes
    columns: dict[str, tuple[FloatColumn | IntColumn, ...]] = {
        "pairs_then_values": (IntColumn(np.arange(rows)), two("on_off"), two("geyser"), values) * 2,
        "values_between": (two("signed_zeros"), values, two("missing"), two("spike"), values, two("long"), values),
        "coded_last": (values, two("on_off"), two("geyser")),
        "coded_only": tuple(two(name) for name in TWO_VALUED),
        "long_rows": (values, two("equal_lengths"), two("equal_lengths"), values, two("long"), two("constant")),
        "single_codes": (
            two("geyser"),
            values,
            two("wide"),
            IntColumn(rng.integers(0, 1000, rows)),
            two("on_off"),
            large,
        ),
    }
    table = Table(tuple(f"c{i}" for i in range(len(columns[layout]))), columns[layout])
    assert bytes(table_text(table)) == reference_text(table)
    assert table_lines(table).ends.tolist() == reference_lines(table).ends.tolist()


def test_two_valued_columns_beyond_the_tables_fall_back() -> None:
    column = FloatColumn(np.where(np.arange(2000) % 2 == 0, 1.0, np.inf), 1)
    table = Table(("i", "x"), (IntColumn(np.arange(2000)), column))
    assert bytes(table_text(table)) == reference_text(table)
    assert bytes(table_text(table)).splitlines()[:2] == [b"0,1.0", b"1,inf"]


@pytest.mark.parametrize(
    ("middle", "last"),
    [
        ([1_234_567.1234, 2.5], [12.3456, 0.5]),  # last cells of 4-8 bytes, rows of 15-23: stored as the rows' last 8
        ([1_234_567.1234, 2.5], [123_456.7891, 1.0]),  # a last cell of 12 bytes: each stored exactly
        (None, [1.0, 2.5]),  # rows of 4 bytes, too short for an 8-byte window: each stored exactly
    ],
)
def test_each_rows_last_cell_ends_the_row(middle: list[float] | None, last: list[float]) -> None:
    """The last cell of a row (not merged with the cells before it) is stored as the row's final 8 bytes where it
    fits them, else exactly: the same text either way."""
    columns: tuple[IntColumn | FloatColumn, ...] = (FloatColumn(np.array(last), 4),)
    if middle is not None:
        columns = (IntColumn(np.arange(len(last))), FloatColumn(np.array(middle), 4), *columns)
    table = Table(tuple(f"c{i}" for i in range(len(columns))), columns)
    assert bytes(table_text(table)) == reference_text(table)
    assert table_lines(table).ends.tolist() == reference_lines(table).ends.tolist()


def test_timestamps() -> None:
    seconds = np.array([0, 1_704_067_199, 1_704_067_200, -1, 253_402_300_799])
    assert lines(Table(("t",), (TimeColumn(seconds),))) == [
        "1970-01-01 00:00:00Z",
        "2023-12-31 23:59:59Z",
        "2024-01-01 00:00:00Z",
        "1969-12-31 23:59:59Z",
        "9999-12-31 23:59:59Z",
    ]


SEED_STEM = "realistic_fake_energy_data_"


def test_counted_lines_and_splice() -> None:
    """Lines of a row index and constant cells across widths; some lines replaced, the rest copied."""
    base = counted_lines(7, 96, b",none\n")  # 7 .. 102: one, two and three digits
    expected = [f"{k},none" for k in range(7, 103)]
    assert bytes(base.text).decode().splitlines() == expected
    assert base.ends.tolist() == np.cumsum([len(line) + 1 for line in expected]).tolist()
    rows = np.array([0, 3, 4, 95])
    table = Table(("", "x"), (IntColumn(rows + 7), CodeColumn(np.array([1, 2, 3, 5]), LABELS)))
    spliced = bytes(splice(base, rows, table_lines(table))).decode().splitlines()
    for row, label in zip(rows.tolist(), ["negative", "spike", "missing", "dropout"], strict=True):
        expected[row] = f"{row + 7},{label}"
    assert spliced == expected
    assert bytes(splice(base, np.array([], dtype=np.intp), table_lines(table))) == bytes(base.text)


@pytest.mark.parametrize(("first", "count"), [(0, 86_400), (9_990, 20_030), (99_999_990, 20)])
def test_counted_lines_across_runs_of_high_digits(first: int, count: int) -> None:
    """A day's row index (and beyond 10,000s and 10**8): the low four digits of each run of equal high ones."""
    lines = counted_lines(first, count, b",none,none\n")
    assert bytes(lines.text) == b"".join(b"%d,none,none\n" % k for k in range(first, first + count))


def test_lines_end_where_the_reference_lines_end() -> None:
    table = random_table(np.random.default_rng(7), 300, 100.0)
    lines = table_lines(table)
    assert (
        lines.ends.tolist() == np.cumsum([len(line) + 1 for line in reference_text(table).split(b"\n")[:-1]]).tolist()
    )
    part = table.take(np.array([3, 5, 299]))
    assert reference_text(part).split(b"\n")[:-1] == [reference_text(table).split(b"\n")[i] for i in (3, 5, 299)]


# sha256 of the files `python -m simulator generate` wrote with pyarrow's CSV writer (commit 702fb4d), same plans.
PINNED = {
    "seed_classic": (
        DatasetPlan(days=1, seed=7, layout="seed", profile="classic", tz="UTC"),
        {f"{SEED_STEM}without_errors.csv": "3136a1a2e24a501b082cfab6c5812261d465e2e99e68baa046b0d3dfd0d1d5e3"},
    ),
    "tidy_classic_errors": (
        DatasetPlan(days=1, seed=3, faults=FaultConfig(every_s=25), profile="classic", tz="UTC"),
        {
            "energy_data_without_errors.csv": "1467c0f551047e3544c77aac2b780a135bd2fc0d064a835bca4ece641cdf3241",
            "energy_data_with_errors.csv": "76d18f43dce1507d7be2d752f3f5e545ecbe2d079333fd97a31be5e2bfda46b2",
        },
    ),
    "seed_realistic_dst_all_errors": (
        DatasetPlan(
            days=1,
            seed=6,
            profile="realistic",
            faults=FaultConfig(every_s=25, types=ALL_TYPES),
            layout="seed",
            tz="Europe/Berlin",
            start_date=date(2024, 3, 31),
        ),
        {
            f"{SEED_STEM}without_errors.csv": "353ee60454cb3d3d47de560fdf75980614fc655b1bdef8e469acd87418a52e36",
            f"{SEED_STEM}with_errors.csv": "222d9752192d1b9342b9313cd378308299950741f91e67c0cf962e3a2ff0ced7",
            f"{SEED_STEM}error_types.csv": "9107ff9ad3d7dc274d11210fe160b876c1dedf6430aab860e87e5fd8d39318c6",
        },
    ),
}


@pytest.mark.parametrize("job", sorted(PINNED))
def test_datasets_are_byte_for_byte_the_pyarrow_era_files(tmp_path: Path, job: str) -> None:
    plan, digests = PINNED[job]
    write_dataset(plan, tmp_path)
    got = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in digests}
    assert got == digests


def test_generate_csv_imports_no_dataframe_library(tmp_path: Path) -> None:
    code = (
        "import sys; from simulator.__main__ import main; "
        f"assert main(['generate', '--days', '1', '--households', 'A', '--errors-every', '25', '--seed', '1', "
        f"'--layout', 'seed', '--profile', 'classic', '--out', {str(tmp_path)!r}]) == 0; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'pyarrow', 'tqdm', 'sqlite3', 'ssl'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
