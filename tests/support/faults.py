"""What a fault did to the readings, as the fault tests report it (tests/integration/test_faults.py on one broker,
test_nats_faults.py on the NATS cluster): the figures, printed and appended as JSON lines to ``$FAULT_REPORT`` when
that is set (docs/reliability.md), and the bridge's stored readings to check them against."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Figures:
    """What one scenario did to the readings: those the meters made, those lost in the end, duplicate deliveries the
    bridge dropped, seqs that arrived after a gap was seen (by a meter's backlog or a replay), and seqs the bridge
    asked the meters to replay."""

    scenario: str
    broker: str
    readings: int
    lost: int
    duplicated: int
    repaired: int
    replayed: int

    @classmethod
    def of(cls, scenario: str, broker: str, readings: int, lost: int, summary: dict[str, dict[str, object]]) -> Figures:
        """The figures of a run whose bridge's ``/api/meters`` says ``summary`` at the end."""

        def total(key: str) -> int:
            return sum(int(str(row[key])) for row in summary.values())

        return cls(
            scenario, broker, readings, lost, total("duplicates"), total("gaps_repaired"), total("replay_requested")
        )

    def report(self) -> None:
        """Print the figures and append them to ``$FAULT_REPORT`` (if set)."""
        print(f"\nFAULT FIGURES {json.dumps(asdict(self))}")
        path = os.environ.get("FAULT_REPORT")
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(asdict(self)) + "\n")


def store_rows(bridge_dir: Path, meter: str) -> list[tuple[object, ...]]:
    """(seq, ts, powers W, energy registers kWh) of every reading of ``meter`` in the store of the bridge that ran
    in ``bridge_dir``, by seq."""
    with sqlite3.connect(bridge_dir / "data" / "bridge.sqlite3") as conn:
        return conn.execute(
            "SELECT seq, ts, ac_w, geyser_w, overall_w, ac_kwh, geyser_kwh, overall_kwh FROM readings"
            " WHERE meter = ? ORDER BY seq",
            (meter,),
        ).fetchall()
