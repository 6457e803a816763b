"""A live realistic meter with injected errors: every reading still follows the wire contract, the bridge accepts
them (errors are data, not garbage), dropouts leave gaps in ``ts`` but never in ``seq``."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.wire import Reading
from tests.support.mqtt import READING_TOPICS, collecting, readings_in
from tests.support.procs import Proc, running, start_meters

pytestmark = pytest.mark.integration


def test_live_errors_follow_the_contract(broker: Proc, tmp_path: Path) -> None:
    port = broker.port or 0
    with collecting(port, READING_TOPICS) as sub:
        meters = start_meters(
            port,
            ["A"],
            tmp_path,
            speed=120,
            start_at="07:00:00",
            profile="realistic",
            extra=["--errors-every", "3", "--error-types", "all"],
        )
        with running(meters):
            readings: list[Reading] = []
            for _ in range(400):  # bounded: messages, each one reading or a batch of them
                readings += readings_in(sub.wait_for(lambda m: True, timeout=15))
                if len(readings) >= 400:
                    break
    seqs = [r.seq for r in readings]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # transport: no gap in seq
    stamps = [r.ts for r in readings]
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] + 1 > len(stamps)  # dropouts: seconds with no reading at all
    powers = [p for r in readings for p in (r.ac_w, r.geyser_w, r.overall_w)]
    assert any(p is None for p in powers)  # missing
    assert any(p is not None and p < 0 for p in powers)  # negative
    energies = [r.overall_kwh for r in readings]
    assert energies == sorted(energies)  # the register stays monotonic whatever the reported power does
