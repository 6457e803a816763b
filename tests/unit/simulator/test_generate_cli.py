"""python -m simulator generate / plot, in process: files written, settings as defaults, and bad input answered with one
line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from simulator.__main__ import main
from simulator.dataset.writers import MANIFEST

pytestmark = pytest.mark.usefixtures("no_fleet_env")


def test_generate_seed_layout(tmp_path: Path) -> None:
    argv = ["generate", "--days", "1", "--households", "A,B,C", "--errors-every", "25", "--seed", "1"]
    assert main([*argv, "--format", "csv", "--layout", "seed", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "realistic_fake_energy_data_with_errors.csv").read_text()
    assert text.startswith(",A_AC,A_Geyser,A_Overall,B_AC,B_Geyser,B_Overall,C_AC,C_Geyser,C_Overall\n0,")
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["seed"] == 1
    assert manifest["errors"]["every_s"] == 25
    assert manifest["errors"]["types"] == ["negative", "spike", "missing"]


def test_generate_tidy_parquet_fleet(tmp_path: Path) -> None:
    argv = ["generate", "--fleet", "2", "--households", "B", "--error-probability", "0.001", "--error-types", "all"]
    argv += ["--format", "parquet", "--start-date", "2024-06-01", "--tz", "Asia/Kolkata", "--out", str(tmp_path)]
    assert main(argv) == 0
    frame = pd.read_parquet(tmp_path / "energy_data_with_errors.parquet")
    assert list(pd.unique(frame["meter"])) == ["B-0001", "B-0002"]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-05-31T18:30:00Z")  # local midnight in Kolkata
    assert len(frame) == 2 * 86_400


def test_settings_are_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_SEED", "77")
    monkeypatch.setenv("FLEET_TZ", "Asia/Kolkata")
    assert main(["generate", "--households", "A", "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert (manifest["seed"], manifest["tz"], manifest["profile"]) == (77, "Asia/Kolkata", "realistic")
    assert manifest["files"] == ["energy_data_without_errors.csv"]


def test_same_command_same_data(tmp_path: Path) -> None:
    argv = ["generate", "--households", "C", "--errors-every", "10", "--seed", "3"]
    assert main([*argv, "--out", str(tmp_path / "one")]) == 0
    assert main([*argv, "--out", str(tmp_path / "two")]) == 0
    name = "energy_data_with_errors.csv"
    assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--days", "0"], "--days: must be 1-3660"),
        (["generate", "--days", "three"], "--days: not a whole number"),
        (["generate", "--fleet", "-1"], "--fleet: must be 1-"),
        (["generate", "--households", "A,Q"], "unknown household 'Q'"),
        (["generate", "--households", " , "], "--households: no households given"),
        (["generate", "--format", "xlsx"], "invalid choice: 'xlsx'"),
        (["generate", "--layout", "wide"], "invalid choice: 'wide'"),
        (["generate", "--layout", "seed", "--fleet", "3"], "seed layout"),
        (["generate", "--layout", "seed", "--format", "parquet"], "seed layout is the original CSV"),
        (["generate", "--profile", "nonesuch"], "--profile: unknown profile 'nonesuch'"),
        (["generate", "--errors-every", "5", "--error-probability", "0.1"], "not both"),
        (["generate", "--errors-every", "0"], "--errors-every: must be 1-86400"),
        (["generate", "--error-probability", "2"], "--error-probability: must be > 0 and <= 1"),
        (["generate", "--error-probability", "lots"], "--error-probability: not a number"),
        (["generate", "--error-types", "spike"], "--error-types: needs --errors-every or --error-probability"),
        (["generate", "--errors-every", "5", "--error-types", "gremlins"], "unknown error type 'gremlins'"),
        (["generate", "--start-date", "2024-02-30"], "--start-date: expected YYYY-MM-DD"),
        (["generate", "--tz", "Mars/Olympus"], "--tz: unknown time zone"),
        (["generate", "--seed", "-4"], "--seed: must be 0-"),
        (["generate", "--bogus"], "unrecognized arguments: --bogus"),
        (["plot", "--household", "Q", "--date", "2024-01-01"], "unknown household 'Q'"),
        (["plot", "--household", "A", "--date", "yesterday"], "--date: expected YYYY-MM-DD"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: command"),
        (["run"], "--household: give --household ID (repeatable), --households A,B,C or --fleet N"),
        (["run", "--fleet-offset", "3"], "--household: give --household ID"),
        (["run", "--household", "A", "--fleet-offset", "3"], "fleet-offset: an offset needs a fleet size"),
        (["run", "--fleet", "2", "--households", "A,a"], "a household is given twice"),
        (["run", "--household", "A", "--fleet", "0"], "--fleet: must be 1-"),
        (["run", "--household", "A", "--fleet", "many"], "--fleet: not a whole number"),
        (["run", "--household", "A", "--keepalive", "0"], "--keepalive: must be 1-65535"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = [] if not args or args[0] not in ("generate", "plot") else ["--out", str(tmp_path / "x.png")]
    assert main([*args, *out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simulator: configuration error: ")
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_bad_setting_is_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLEET_PROFILE", "nonesuch")
    assert main(["generate", "--out", str(tmp_path)]) == 2
    assert "FLEET_PROFILE" in capsys.readouterr().err


def test_unwritable_output_is_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["generate", "--households", "A", "--out", str(blocker / "sub")]) == 2
    assert "--out: cannot write there" in capsys.readouterr().err
    assert main(["plot", "--household", "A", "--date", "2024-01-01", "--out", str(tmp_path / "day.nope")]) == 2
    assert "--out: cannot write" in capsys.readouterr().err


def _run_specs(argv: list[str]) -> list[str]:
    from simulator.cli import build_parser, run_specs

    return [spec.meter_id for spec in run_specs(build_parser("run").parse_args(["run", *argv]))]


def test_run_fleet_alone_uses_the_a_b_c_templates() -> None:
    assert _run_specs(["--fleet", "5"]) == ["A-0001", "B-0001", "C-0001", "A-0002", "B-0002"]
    assert _run_specs(["--fleet", "2", "--fleet-offset", "3"]) == ["A-0002", "B-0002"]
    assert _run_specs(["--fleet", "3", "--households", "C,B"]) == ["C-0001", "B-0001", "C-0002"]
    assert _run_specs(["--fleet", "2", "--household", "B"]) == ["B-0001", "B-0002"]
    assert _run_specs(["--household", "A", "--households", "B,C"]) == ["A", "B", "C"]
    assert _run_specs(["--households", "C"]) == ["C"]


def test_as_a_process_the_same_files_and_log_lines(tmp_path: Path) -> None:
    """``python -m simulator generate`` ends without the interpreter's teardown: its exit status, its log lines (the
    last one written just before the exit) and its files are those of the same command in process."""
    argv = ["generate", "--households", "A,B", "--errors-every", "25", "--seed", "5", "--layout", "seed"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    done = subprocess.run(
        [sys.executable, "-m", "simulator", *argv, "--out", str(tmp_path / "process")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.rstrip().endswith("realistic_fake_energy_data_error_types.csv"), done.stderr
    assert main([*argv, "--out", str(tmp_path / "in_process")]) == 0
    names = sorted(path.name for path in (tmp_path / "in_process").iterdir())
    assert sorted(path.name for path in (tmp_path / "process").iterdir()) == names
    for name in names:
        assert (tmp_path / "process" / name).read_bytes() == (tmp_path / "in_process" / name).read_bytes(), name
    bad = subprocess.run(
        [sys.executable, "-m", "simulator", "generate", "--days", "0", "--out", str(tmp_path / "bad")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert (bad.returncode, bad.stderr) == (2, "simulator: configuration error: --days: must be 1-3660, got 0\n")
