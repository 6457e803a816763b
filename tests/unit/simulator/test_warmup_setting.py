"""FLEET_WARMUP and --warmup: parsed like the other durations (0 to 7 days), a day by default for household meters and
off with --fleet, refused when longer than the outbox's retention; bad input is a ConfigError naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import DEFAULT_WARMUP_S, KNOWN_KEYS, MAX_WARMUP_S, load_settings
from simulator.__main__ import main
from simulator.live.checkpoint import DEFAULT_RETENTION_S, FLEET_MODE_RETENTION_S
from simulator.live.start import warmup_seconds
from tests.support.paths import README


@pytest.fixture(autouse=True)
def data_in_tmp(no_fleet_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FLEET_* setting from the environment running the tests (``no_fleet_env``); data (a secret) goes to
    tmp_path."""
    monkeypatch.setenv("FLEET_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("0", 0), ("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("24h", 86_400), ("7d", 604_800)],
)
def test_fleet_warmup_parses_durations(raw: str, seconds: int) -> None:
    assert load_settings({"FLEET_WARMUP": raw}).warmup_s == seconds


def test_fleet_warmup_unset_or_blank_is_the_simulators_default() -> None:
    assert load_settings({}).warmup_s is None
    assert load_settings({"FLEET_WARMUP": " "}).warmup_s is None
    assert "FLEET_WARMUP" in KNOWN_KEYS
    assert "| `FLEET_WARMUP` |" in README.read_text()


@pytest.mark.parametrize("raw", ["-1h", "1.5h", "24 hours", "2w", "8d", str(MAX_WARMUP_S + 1), "day", "1e3"])
def test_bad_fleet_warmup_is_a_config_error_naming_it(raw: str) -> None:
    with pytest.raises(ConfigError, match="FLEET_WARMUP"):
        load_settings({"FLEET_WARMUP": raw})


def test_default_is_a_day_for_households_and_off_for_a_fleet() -> None:
    settings = load_settings({})
    assert warmup_seconds(None, settings, False, DEFAULT_RETENTION_S) == DEFAULT_WARMUP_S == 86_400
    assert warmup_seconds(None, settings, True, FLEET_MODE_RETENTION_S) == 0


def test_command_line_overrides_the_setting() -> None:
    settings = load_settings({"FLEET_WARMUP": "2h"})
    assert warmup_seconds(None, settings, False, DEFAULT_RETENTION_S) == 7200
    assert warmup_seconds("0", settings, False, DEFAULT_RETENTION_S) == 0
    assert warmup_seconds("30m", settings, True, FLEET_MODE_RETENTION_S) == 1800
    assert warmup_seconds(None, load_settings({"FLEET_WARMUP": "0"}), False, DEFAULT_RETENTION_S) == 0


@pytest.mark.parametrize(
    ("text", "raw", "fleet", "retention_s", "key"),
    [
        ("2h", None, True, FLEET_MODE_RETENTION_S, "--warmup"),
        (None, "2h", True, FLEET_MODE_RETENTION_S, "FLEET_WARMUP"),
        (None, None, False, 12 * 3600, "FLEET_WARMUP"),  # the default day against --outbox-retention 12h
        ("7d", None, False, 6 * 86_400, "--warmup"),
    ],
)
def test_longer_than_the_outbox_retention_is_refused(
    text: str | None, raw: str | None, fleet: bool, retention_s: int, key: str
) -> None:
    settings = load_settings({} if raw is None else {"FLEET_WARMUP": raw})
    with pytest.raises(ConfigError, match="longer than the outbox's retention") as caught:
        warmup_seconds(text, settings, fleet, retention_s)
    assert caught.value.key == key
    assert f"at most {retention_s} s" in str(caught.value)


def test_equal_to_the_retention_is_accepted() -> None:
    assert warmup_seconds("1h", load_settings({}), True, FLEET_MODE_RETENTION_S) == 3600


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--warmup", "8d"], {}, "--warmup: at most 604800 s"),
        (["--warmup", "soon"], {}, "--warmup: expected a duration"),
        ([], {"FLEET_WARMUP": "-5m"}, "FLEET_WARMUP: expected a duration"),
        ([], {"FLEET_WARMUP": "3d"}, "FLEET_WARMUP: a warm-up of 259200 s is longer than the outbox's retention"),
        (["--outbox-retention", "12h"], {}, "FLEET_WARMUP: a warm-up of 86400 s (the default) is longer"),
        (["--fleet", "3", "--warmup", "2h"], {}, "--warmup: a warm-up of 7200 s is longer"),
    ],
)
def test_run_refuses_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    retention = [] if "--outbox-retention" in args or "--fleet" in args else ["--outbox-retention", "2d"]
    assert main(["run", "--household", "A", *retention, *args]) == 2
    last = capsys.readouterr().err.splitlines()[-1]  # after the log line of the open-file limit
    assert last.startswith("simulator: configuration error: ")
    assert message in last, last
    assert not (tmp_path / "data" / "meters.sqlite3").exists()  # refused before the outbox was opened
