"""One local day of one meter as a figure: its three channels in kW and, when the profile models them, the room and
hot-water tank temperatures in degrees C.

Pure: builds a ``matplotlib.figure.Figure`` on an Agg canvas (no pyplot, no global backend or state); the caller saves
it. The x axis is hours elapsed since local midnight (0-24; 23 or 25 on a DST change).

A profile models temperatures when it has a ``day(date)`` method whose result has ``room_c`` and ``tank_c`` arrays
(one value per step of the day, evenly spread over it), e.g. the realistic profile.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol, cast

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from simulator.profiles.block import ProfileBlock


class DayThermals(Protocol):
    """Temperatures of one local day, evenly spaced over it."""

    @property
    def room_c(self) -> npt.ArrayLike:
        """Room air temperature, degrees C."""
        ...

    @property
    def tank_c(self) -> npt.ArrayLike:
        """Hot-water tank temperature, degrees C."""
        ...


def thermals_of(profile: object, day: date) -> DayThermals | None:
    """The profile's temperatures of ``day`` if it has a ``day(date)`` with ``room_c`` and ``tank_c``, else None."""
    method = getattr(profile, "day", None)
    if not callable(method):
        return None
    result = method(day)
    if not (hasattr(result, "room_c") and hasattr(result, "tank_c")):
        return None
    return cast(DayThermals, result)


def _hours(count: int, day_s: int) -> npt.NDArray[np.float64]:
    """Elapsed hours of ``count`` evenly spaced steps over a day of ``day_s`` seconds (each at its step's start)."""
    return np.arange(count, dtype=np.float64) * (day_s / max(count, 1)) / 3600.0


def day_figure(block: ProfileBlock, title: str, thermals: DayThermals | None = None) -> Figure:
    """A figure of one day's ``block`` (power per second, kW), with temperature panels when ``thermals`` is given."""
    series: list[tuple[npt.NDArray[np.float64], str, str]] = []
    if thermals is not None:
        series.append((np.asarray(thermals.room_c, dtype=np.float64), "room (°C)", "tab:green"))
        tank = np.asarray(thermals.tank_c, dtype=np.float64)
        if np.ptp(tank) > 0:  # a household without a water heater (the office) has a constant "tank": no panel
            series.append((tank, "tank (°C)", "tab:orange"))
    panels = 1 + len(series)
    fig = Figure(figsize=(11, 3.2 * panels + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    day_s = len(block.overall_kw)
    hours = _hours(day_s, day_s)
    power = axes[0]
    power.plot(hours, block.overall_kw, color="0.7", linewidth=0.4, drawstyle="steps-post", label="Overall")
    minutes = day_s // 60
    if minutes:
        means = block.overall_kw[: minutes * 60].reshape(minutes, 60).mean(axis=1)
        power.plot(_hours(minutes, minutes * 60), means, color="black", linewidth=0.8, label="Overall, 1-min mean")
    power.plot(hours, block.ac_kw, color="tab:blue", linewidth=1.0, drawstyle="steps-post", label="AC")
    power.plot(hours, block.geyser_kw, color="tab:red", linewidth=1.0, drawstyle="steps-post", label="Geyser")
    power.set_ylabel("power (kW)")
    low, high = power.get_ylim()
    power.set_ylim(low, high + 0.25 * (high - low))  # room for the legend above the data
    power.legend(loc="upper left", ncols=4, fontsize="small")
    power.set_title(title)
    for axis, (temperatures, label, colour) in zip(axes[1:], series, strict=True):
        axis.plot(_hours(len(temperatures), day_s), temperatures, color=colour, linewidth=0.8)
        axis.set_ylabel(label)
    last = axes[-1]
    last.set_xlabel("hours since local midnight")
    last.set_xlim(0, day_s / 3600.0)
    last.set_xticks(np.arange(0, day_s / 3600.0 + 0.01, 3))
    for axis in axes:
        axis.grid(True, alpha=0.3)
    return fig
