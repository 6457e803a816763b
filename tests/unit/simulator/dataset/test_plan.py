"""simulator.dataset.plan, layouts and writers: the plan validates itself; chunks equal one-shot computation whatever
the chunk size; the tidy and seed layouts have the documented columns, units, rows and ground truth; csv and parquet
round-trip with pandas; files are appended chunk by chunk."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from config.errors import ConfigError
from simulator.dataset.layouts import TIDY_ERRORS, TIDY_VALUES
from simulator.dataset.plan import DatasetPlan, chunks
from simulator.dataset.writers import MANIFEST, write_dataset
from simulator.localday import day_span
from simulator.meters.faults import ALL_TYPES, LABELS, ErrorType, FaultConfig, faulted_seconds
from simulator.profiles.factory import make_profile

SEED = 5
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
SEED_HEADER = ",A_AC,A_Geyser,A_Overall,B_AC,B_Geyser,B_Overall,C_AC,C_Geyser,C_Overall"
TIDY_COLUMNS = ["timestamp", "meter", "ac_w", "geyser_w", "overall_w"]
ALL_FAULTS = FaultConfig(probability=0.01, types=ALL_TYPES)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": 0},
        {"profile": "nonesuch"},
        {"tz": "Mars/Olympus"},
        {"seed": -1},
        {"layout": "wide"},
        {"fmt": "xlsx"},
        {"meters_per_chunk": 0},
        {"households": ("A", "Z")},
        {"households": ("A", "A")},
        {"fleet_size": 0},
        {"layout": "seed", "fleet_size": 3},
        {"layout": "seed", "fmt": "parquet"},
    ],
)
def test_plan_validates_itself(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        DatasetPlan(**kwargs)  # type: ignore[arg-type]


def test_seed_layout_orders_meters_as_the_original() -> None:
    plan = DatasetPlan(households=("C", "A"), layout="seed")
    assert [s.meter_id for s in plan.specs()] == ["A", "C"]
    assert plan.group_size() == 2


def per_meter(plan: DatasetPlan) -> dict[str, list[np.ndarray]]:
    """Each meter's clean values, faulted values and codes, concatenated over its chunks."""
    parts: dict[str, list[list[np.ndarray]]] = {}
    for chunk in chunks(plan):
        assert chunk.values_kw is not None
        assert chunk.codes is not None
        for i, meter in enumerate(chunk.meter_ids):
            parts.setdefault(meter, []).append([chunk.clean_kw[i], chunk.values_kw[i], chunk.codes[i]])
    return {meter: [np.concatenate(column) for column in zip(*days, strict=True)] for meter, days in parts.items()}


def test_chunks_equal_one_shot() -> None:
    plan = DatasetPlan(days=2, fleet_size=4, seed=SEED, faults=ALL_FAULTS, meters_per_chunk=3)
    assert plan.chunk_count() == 4  # two days x (3 meters + 1 meter)
    assert [len(c.meter_ids) for c in chunks(plan)] == [3, 1, 3, 1]
    got = per_meter(plan)
    assert list(got) == ["A-0001", "B-0001", "C-0001", "A-0002"]
    zone = ZoneInfo("UTC")
    for spec in plan.specs():
        profile = make_profile("classic", spec, zone, SEED)
        one_shot = faulted_seconds(profile, T0, 2 * 86_400, zone, ALL_FAULTS, SEED, spec.key)
        clean, values, codes = got[spec.meter_id]
        assert np.array_equal(clean, one_shot.clean_kw)
        assert np.array_equal(values, one_shot.values_kw, equal_nan=True)
        assert np.array_equal(codes, one_shot.codes)


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed")
    plan = DatasetPlan(days=2, seed=SEED, faults=FaultConfig(every_s=25, types=ALL_TYPES), layout="seed")
    write_dataset(plan, out)
    return out


def test_seed_layout_is_the_original_csv(seed_files: Path) -> None:
    without = seed_files / "realistic_fake_energy_data_without_errors.csv"
    with_errors = seed_files / "realistic_fake_energy_data_with_errors.csv"
    types = seed_files / "realistic_fake_energy_data_error_types.csv"
    assert sorted(p.name for p in seed_files.iterdir()) == sorted(
        [MANIFEST, without.name, with_errors.name, types.name]
    )
    for path in (without, with_errors, types):
        lines = path.read_text().splitlines()
        assert lines[0] == SEED_HEADER
        assert len(lines) == 1 + 2 * 86_400
        assert lines[1].startswith("0,")
        assert lines[-1].startswith(f"{2 * 86_400 - 1},")
    clean = pd.read_csv(without, index_col=0)
    assert list(clean.index) == list(range(2 * 86_400))
    assert all(dtype == np.float64 for dtype in clean.dtypes)  # "0.0", never a bare "0" read as int
    assert set(clean["A_AC"]) == {0.0, 1.5}  # kW
    assert set(clean["B_Geyser"]) == {0.0}
    assert set(clean.loc[7 * 3600 - 1 : 7 * 3600, "A_AC"]) == {1.5, 0.0}  # switches exactly on the hour


def test_seed_layout_ground_truth_is_aligned(seed_files: Path) -> None:
    clean = pd.read_csv(seed_files / "realistic_fake_energy_data_without_errors.csv", index_col=0)
    faulted = pd.read_csv(seed_files / "realistic_fake_energy_data_with_errors.csv", index_col=0)
    types = pd.read_csv(seed_files / "realistic_fake_energy_data_error_types.csv", index_col=0)
    assert list(faulted.columns) == list(clean.columns) == list(types.columns)
    none = (types == "none").to_numpy()
    assert np.array_equal(faulted.to_numpy()[none], clean.to_numpy()[none])
    assert set(np.unique(types.to_numpy())) == set(LABELS)
    faulted_rows = np.flatnonzero((types != "none").any(axis=1).to_numpy())
    assert set(faulted_rows % 25) >= {0}
    assert np.isnan(faulted.to_numpy()[(types == "missing").to_numpy()]).all()
    dropped = (types == "dropout").to_numpy()
    assert np.isnan(faulted.to_numpy()[dropped]).all()
    for meter in "ABC":  # a dropout empties all three channels of its meter only
        cols = [f"{meter}_AC", f"{meter}_Geyser", f"{meter}_Overall"]
        per_row = (types[cols] == "dropout").sum(axis=1)
        assert set(per_row) <= {0, 3}


def read_tidy(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, parse_dates=["timestamp"])
    return pd.read_parquet(path)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tidy_layout_round_trips(tmp_path: Path, fmt: str) -> None:
    plan = DatasetPlan(days=1, fleet_size=3, seed=SEED, faults=ALL_FAULTS, fmt=fmt, meters_per_chunk=2)
    files = write_dataset(plan, tmp_path)
    assert [f.name for f in files] == [f"energy_data_without_errors.{fmt}", f"energy_data_with_errors.{fmt}"]
    assert not list(tmp_path.glob("*.partial"))
    clean, faulted = read_tidy(files[0]), read_tidy(files[1])
    assert list(clean.columns) == TIDY_COLUMNS
    assert list(faulted.columns) == TIDY_COLUMNS + list(TIDY_ERRORS)
    assert len(clean) == len(faulted) == 3 * 86_400
    assert str(clean["timestamp"].dt.tz) == "UTC"
    assert clean["timestamp"].iloc[0] == pd.Timestamp("2024-01-01T00:00:00Z")
    assert clean["timestamp"].iloc[86_400] == pd.Timestamp("2024-01-01T00:00:00Z")  # sorted by day, meter, time
    assert list(pd.unique(clean["meter"])) == ["A-0001", "B-0001", "C-0001"]
    assert (clean["timestamp"] == faulted["timestamp"]).all()
    assert (clean["meter"] == faulted["meter"]).all()
    for column in TIDY_VALUES:
        assert clean[column].dtype == np.float64
    assert set(clean.loc[clean["meter"] == "A-0001", "ac_w"]) == {0.0, 1500.0}  # W

    zone = ZoneInfo("UTC")
    spec = plan.specs()[1]
    truth = faulted_seconds(make_profile("classic", spec, zone, SEED), T0, 86_400, zone, ALL_FAULTS, SEED, spec.key)
    mine = faulted[faulted["meter"] == spec.meter_id]
    assert np.allclose(
        clean[clean["meter"] == spec.meter_id][list(TIDY_VALUES)], np.round(truth.clean_kw * 1000, 1), rtol=0, atol=1e-9
    )
    assert np.allclose(mine[list(TIDY_VALUES)], np.round(truth.values_kw * 1000, 1), rtol=0, atol=1e-6, equal_nan=True)
    assert np.array_equal(mine[list(TIDY_ERRORS)].to_numpy(), np.array(LABELS)[truth.codes])

    errors = faulted[list(TIDY_ERRORS)].to_numpy()
    values = faulted[list(TIDY_VALUES)].to_numpy()
    none = errors == "none"
    assert np.array_equal(values[none], clean[list(TIDY_VALUES)].to_numpy()[none])
    dropout = (errors == "dropout").all(axis=1)
    assert dropout.sum() > 0
    assert np.isnan(values[dropout]).all()  # dropout rows are kept, with no values
    assert ((errors == "dropout").any(axis=1) == dropout).all()


def test_csv_and_parquet_hold_the_same_data(tmp_path: Path) -> None:
    frames = []
    for fmt in ("csv", "parquet"):
        plan = DatasetPlan(days=1, households=("B",), seed=SEED, faults=ALL_FAULTS, fmt=fmt)
        frames.append(read_tidy(write_dataset(plan, tmp_path / fmt)[1]))
    csv, parquet = frames
    assert (csv["timestamp"] == parquet["timestamp"]).all()
    assert np.array_equal(csv[list(TIDY_VALUES)].to_numpy(), parquet[list(TIDY_VALUES)].to_numpy(), equal_nan=True)
    assert (csv[list(TIDY_ERRORS)].to_numpy() == parquet[list(TIDY_ERRORS)].to_numpy()).all()


def test_without_errors_only_the_clean_file(tmp_path: Path) -> None:
    files = write_dataset(DatasetPlan(days=1, households=("A",), seed=SEED), tmp_path)
    assert [f.name for f in files] == ["energy_data_without_errors.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "energy_data_without_errors.csv"]
    lines = files[0].read_text().splitlines()
    assert lines[0] == ",".join(TIDY_COLUMNS)
    assert lines[1].startswith("2024-01-01 00:00:00Z,A,1500.0,0.0,")
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["seed"] == SEED
    assert manifest["errors"] is None


def test_csv_appends_without_repeating_the_header(tmp_path: Path) -> None:
    plan = DatasetPlan(days=2, households=("A", "B", "C"), seed=SEED, meters_per_chunk=1)
    assert plan.chunk_count() == 6
    text = write_dataset(plan, tmp_path)[0].read_text()
    assert text.count("timestamp") == 1
    assert text.count("\n") == 1 + 6 * 86_400


def test_a_dst_day_has_its_own_length(tmp_path: Path) -> None:
    plan = DatasetPlan(days=2, households=("A",), tz="Europe/Berlin", start_date=date(2024, 3, 31), fmt="parquet")
    frame = pd.read_parquet(write_dataset(plan, tmp_path)[0])
    assert len(frame) == 23 * 3600 + 24 * 3600
    first, _ = day_span(date(2024, 3, 31), ZoneInfo("Europe/Berlin"))
    assert frame["timestamp"].iloc[0] == pd.Timestamp(first, unit="s", tz="UTC")
    assert frame["timestamp"].diff().dropna().eq(pd.Timedelta(seconds=1)).all()


def test_failed_generation_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("simulator.dataset.writers.tables", explode)
    with pytest.raises(RuntimeError, match="boom"):
        write_dataset(DatasetPlan(days=1, households=("A",), seed=SEED, faults=ALL_FAULTS), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_error_codes_are_written_as_labels(tmp_path: Path) -> None:
    plan = DatasetPlan(days=1, households=("A",), seed=SEED, faults=FaultConfig(every_s=1, types=(ErrorType.MISSING,)))
    faulted = read_tidy(write_dataset(plan, tmp_path)[1])
    assert (faulted[list(TIDY_ERRORS)] == "missing").all().all()
    assert faulted[list(TIDY_VALUES)].isna().all().all()
