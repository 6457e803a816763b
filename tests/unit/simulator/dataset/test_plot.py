"""simulator.dataset.plot: one day's channels (and temperatures when the profile has ``day(date)``) to a PNG, on Agg."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from simulator.__main__ import main
from simulator.dataset.plot import day_figure, thermals_of
from simulator.meters.fleet import fleet_specs
from simulator.profiles import factory as profile_factory
from simulator.profiles.block import MeterProfile, ProfileBlock
from simulator.profiles.factory import make_profile
from simulator.profiles.spec import MeterSpec

pytestmark = pytest.mark.usefixtures("no_fleet_env")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DAY = date(2024, 1, 1)


@dataclass(frozen=True)
class FakeDay:
    room_c: np.ndarray
    tank_c: np.ndarray


@dataclass(frozen=True)
class ThermalProfile:
    """A classic profile that also reports temperatures, as the realistic profile will."""

    inner: MeterProfile
    calls: list[date]

    def block(self, start_s: int, n: int) -> ProfileBlock:
        return self.inner.block(start_s, n)

    def day(self, day: date) -> FakeDay:
        self.calls.append(day)
        steps = np.arange(1440, dtype=np.float64)
        return FakeDay(room_c=22 + np.sin(steps / 200), tank_c=np.linspace(60, 45, 1440))


def block(n: int = 86_400) -> ProfileBlock:
    rng = np.random.default_rng(0)
    ac = np.where(np.arange(n) < n // 2, 1.5, 0.0)
    geyser = np.zeros(n)
    return ProfileBlock(0, ac, geyser, 0.5 + ac + geyser + rng.uniform(0.1, 1.0, n))


def test_power_only_figure(tmp_path: Path) -> None:
    figure = day_figure(block(), "household A")
    assert len(figure.axes) == 1
    assert figure.axes[0].get_ylabel() == "power (kW)"
    assert [line.get_label() for line in figure.axes[0].get_lines()] == [
        "Overall",
        "Overall, 1-min mean",
        "AC",
        "Geyser",
    ]
    out = tmp_path / "day.png"
    figure.savefig(out)
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_temperature_panels_from_the_day_duck_type(tmp_path: Path) -> None:
    calls: list[date] = []
    profile = ThermalProfile(make_profile("classic", fleet_specs(["A"])[0], ZoneInfo("UTC"), 1), calls)
    thermals = thermals_of(profile, DAY)
    assert thermals is not None
    assert calls == [DAY]
    figure = day_figure(block(82_800), "DST day", thermals)  # temperatures spread over a 23-hour day
    assert [axis.get_ylabel() for axis in figure.axes] == ["power (kW)", "room (°C)", "tank (°C)"]
    room = figure.axes[1].get_lines()[0].get_xdata()
    assert len(room) == 1440
    assert room[-1] == pytest.approx(23 * (1439 / 1440))
    out = tmp_path / "thermal.png"
    figure.savefig(out)
    assert out.stat().st_size > 10_000


def test_no_temperatures_without_a_usable_day_method() -> None:
    class NoDay:
        pass

    class OtherDay:
        def day(self, day: date) -> object:
            return object()

    assert thermals_of(NoDay(), DAY) is None
    assert thermals_of(OtherDay(), DAY) is None


def test_plot_command_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "day.png"
    assert main(["plot", "--household", "A", "--date", "2024-01-01", "--seed", "1", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert out.stat().st_size > 10_000


def test_plot_command_draws_temperatures_once_a_profile_has_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[date] = []

    def factory(spec: MeterSpec, tz: ZoneInfo, seed: int, climate: str) -> MeterProfile:
        return ThermalProfile(profile_factory.PROFILES["classic"](spec, tz, seed, climate), calls)

    monkeypatch.setitem(profile_factory.PROFILES, "thermal-test", factory)
    out = tmp_path / "thermal.png"
    argv = ["plot", "--household", "C", "--date", "2024-03-31", "--tz", "Europe/Berlin", "--profile", "thermal-test"]
    assert main([*argv, "--seed", "2", "--out", str(out)]) == 0
    assert calls == [date(2024, 3, 31)]
    assert out.read_bytes().startswith(PNG_MAGIC)
