"""Quick statistics of every household at every interval 1..3600 s: never a NaN or null, critical >= 75th percentile.

Fed with a realistic summer day of each household (with injected errors, which the statistics must filter out) and
with the classic profile, through the bridge's own window aggregation.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from bridge.windows.aggregate import boundaries, window_means
from bridge.windows.statistics import quick_stats, stats_document
from simulator.localday import day_span
from simulator.meters.faults import ALL_TYPES, FaultConfig, faulted_seconds
from simulator.meters.fleet import fleet_specs
from simulator.profiles.factory import make_profile

TZ = ZoneInfo("Asia/Kolkata")
DAY = date(2024, 5, 20)
HOURS = 6  # 18:00-24:00: every household's AC, geyser or office tail moves in it


@pytest.mark.parametrize("profile", ["realistic", "classic"])
@pytest.mark.parametrize("household", ["A", "B", "C"])
def test_every_interval_has_a_sane_baseline(profile: str, household: str) -> None:
    spec = fleet_specs([household])[0]
    start, _ = day_span(DAY, TZ)
    start += 18 * 3600
    n = HOURS * 3600
    block = faulted_seconds(
        make_profile(profile, spec, TZ, 7), start, n, TZ, FaultConfig(every_s=97, types=ALL_TYPES), 7, spec.key
    )
    samples = block.values_kw  # with negatives, spikes, gaps: what the bridge really receives
    bad: list[int] = []
    for interval in range(1, 3601):
        edges = boundaries(start, start + n, interval, TZ)
        if len(edges) < 2:
            continue
        means, _ = window_means(samples, start, edges)
        stats = quick_stats(means, n)
        for channel in stats.channels.values():
            values = (channel.p25, channel.median, channel.p75, channel.critical)
            if not all(np.isfinite(values)) or channel.critical < channel.p75:
                bad.append(interval)
        doc = stats_document(stats)
        assert "null" not in repr(doc).lower()
        assert None not in [v for block_ in doc.values() if isinstance(block_, dict) for v in block_.values()]
    assert bad == []
