"""simulator.live.reproduce: readings reproduced from checkpoints are the very bytes the live meter published, for both
profiles, with injected errors (dropouts, stuck runs) over a local midnight, across a restart with other settings;
a killed run resumes after everything it may have published."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config.wire import encode_reading
from simulator.live.checkpoint import Checkpoint
from simulator.live.outbox import Outbox
from simulator.live.reproduce import Model, Reproducer, Resumed, advance, resume
from simulator.localday import day_span
from simulator.meters.faults import ALL_TYPES, FaultConfig
from simulator.meters.fleet import Meter, build_meters, fleet_specs, spec_of

TZ = "Asia/Kolkata"
SEED = 7
MIDNIGHT = day_span(date(2024, 5, 21), ZoneInfo(TZ))[0]
START = MIDNIGHT - 600  # ten minutes before a local midnight: errors are drawn per local day
ERRORS = FaultConfig(every_s=7, types=ALL_TYPES)  # often: dropouts, stuck runs, spikes in every minute


def _live_run(
    outbox: Outbox, model: Model, meters: list[Meter], until: int, checkpoint_every: int, horizon: int | None = None
) -> dict[str, dict[int, bytes]]:
    """Step ``meters`` like the loop does (uneven steps, catch-up limits) up to ``until``, checkpoint every few steps;
    the payloads by meter and seq. The run's horizon is ``horizon`` (default ``until``)."""
    starts = [Checkpoint.of(m.state, None, 0) for m in meters]
    run = outbox.begin_run(model.to_json(), until if horizon is None else horizon, starts)
    out: dict[str, dict[int, bytes]] = {m.meter_id: {} for m in meters}
    sim = float(min(m.state.next_ts for m in meters))
    steps = 0
    while sim < until:  # bounded: sim grows every round
        sim = min(float(until), sim + 0.7 + (steps % 5) * 0.9)
        for meter in meters:
            for reading in meter.due(sim, 200 if steps % 3 else 3):
                out[meter.meter_id][reading.seq] = encode_reading(reading)
        steps += 1
        if steps % checkpoint_every == 0:
            outbox.write_checkpoints([Checkpoint.of(m.state, None, run.run) for m in meters])
    return out


@pytest.mark.parametrize("profile", ["classic", "realistic"])
@pytest.mark.parametrize("faults", [None, ERRORS], ids=["clean", "errors"])
def test_reproduced_payloads_are_the_published_bytes(tmp_path: Path, profile: str, faults: FaultConfig | None) -> None:
    model = Model(SEED, profile, "brisbane", TZ, faults)
    meters = build_meters(fleet_specs(["A", "B", "C"], 3), SEED, ZoneInfo(TZ), START, profile, "brisbane", faults)
    outbox = Outbox(tmp_path)
    published = _live_run(outbox, model, meters, START + 1200, checkpoint_every=13)
    live = {m.meter_id: m for m in meters}
    reproducer = Reproducer(outbox, live)
    for meter in meters:
        mine = published[meter.meter_id]
        seqs = sorted(mine)
        assert seqs == list(range(len(seqs)))
        if faults is not None:
            assert len(seqs) < 1200  # dropouts published nothing
        # Any range: from the start, across checkpoints and midnight, consecutive chunks (cursor), and past the end.
        for first, last in ((0, 99), (100, 500), (501, 501), (502, len(seqs) + 50), (37, 1000), (0, len(seqs) - 1)):
            expected = [mine[s] for s in range(first, min(last, seqs[-1]) + 1)]
            assert reproducer.payloads(meter.meter_id, first, last) == expected, (meter.meter_id, first, last)
        assert Reproducer(outbox).payloads(meter.meter_id, 0, seqs[-1]) == [mine[s] for s in seqs]  # no live meters
    assert reproducer.mismatches == 0


def test_a_killed_run_resumes_at_its_horizon_and_both_runs_reproduce(tmp_path: Path) -> None:
    """Run 1 is killed: it may have published up to its horizon, further than its last checkpoint. The restart steps
    its meters to that horizon (the same readings run 1 had published or would have), then run 2 continues with other
    settings (another seed, errors on); reproducing across the two runs gives each run's own readings."""
    spec = fleet_specs(["A"])
    zone = ZoneInfo(TZ)
    first_model = Model(SEED, "classic", "brisbane", TZ)
    outbox = Outbox(tmp_path)
    (meter,) = build_meters(spec, SEED, zone, START, "classic")
    published = _live_run(outbox, first_model, [meter], START + 300, checkpoint_every=4)["A"]
    run1 = outbox.run_of(1)
    assert run1.horizon == START + 300
    # Its newest checkpoint 40 s before the end: the process was killed before the next round.
    (behind,) = build_meters(spec, SEED, zone, START, "classic")
    advance(behind, START + 260)
    outbox._conn.execute("DELETE FROM checkpoints WHERE seq > ?", (behind.state.seq,))
    outbox.write_checkpoints([Checkpoint.of(behind.state, 17, run1.run)])
    outbox._conn.commit()

    resumed = resume(outbox, ["A", "B"])
    assert set(resumed) == {"A"}
    assert resumed["A"].state == meter.state  # stepped to the horizon: every seq run 1 may have used
    assert resumed["A"].acked_upto == 17

    second_model = Model(SEED + 1, "classic", "brisbane", TZ, ERRORS)
    (again,) = build_meters(spec, SEED + 1, zone, START + 400, "classic", faults=ERRORS, resume={"A": meter.state})
    assert (again.state.seq, again.state.next_ts) == (meter.state.seq, START + 400)  # never back in time
    later = _live_run(outbox, second_model, [again], START + 700, checkpoint_every=5)["A"]
    assert min(later) == meter.state.seq
    reproducer = Reproducer(outbox, {"A": again})
    everything = reproducer.payloads("A", 0, max(later))
    assert everything == [published[s] for s in sorted(published)] + [later[s] for s in sorted(later)]
    assert reproducer.mismatches == 0


def test_a_closed_checkpoint_resumes_as_it_is(tmp_path: Path) -> None:
    """A clean stop at START + 60 with the horizon at START + 100: the meter produced nothing past its last step."""
    outbox = Outbox(tmp_path)
    (meter,) = build_meters(fleet_specs(["B"]), SEED, ZoneInfo(TZ), START, "classic")
    model = Model(SEED, "classic", "brisbane", TZ)
    published = _live_run(outbox, model, [meter], START + 60, checkpoint_every=3, horizon=START + 100)["B"]
    outbox.write_checkpoints([Checkpoint.of(meter.state, 30, 1, closed=True)])
    assert resume(outbox, ["B"])["B"] == Resumed(meter.state, 30)
    last = max(published)
    assert Reproducer(outbox).payloads("B", last - 1, last + 5) == [published[last - 1], published[last]]


def test_the_model_round_trips_through_its_json() -> None:
    for model in (Model(1, "classic", "brisbane", "UTC"), Model(2**62, "realistic", "delhi", TZ, ERRORS)):
        assert Model.from_json(model.to_json()) == model
    probability = Model(3, "classic", "brisbane", "UTC", FaultConfig(probability=0.25, stuck_s=(2, 9)))
    assert Model.from_json(probability.to_json()) == probability


def test_spec_of_gives_the_fleet_specs() -> None:
    for spec in fleet_specs(["A", "B", "C"]) + fleet_specs(["A", "B", "C"], 30) + fleet_specs(["C"], 5, offset=90):
        assert spec_of(spec.meter_id) == spec


def test_an_earlier_versions_outbox_is_continued(tmp_path: Path) -> None:
    """An outbox of the version that kept every reading: its meters continue after their last reading there."""
    outbox = Outbox(tmp_path)
    outbox._conn.executescript(
        "CREATE TABLE outbox (meter TEXT, seq INTEGER, ts INTEGER, ac_kwh REAL, geyser_kwh REAL, overall_kwh REAL,"
        " payload BLOB, PRIMARY KEY (meter, seq)) WITHOUT ROWID;"
        "CREATE TABLE acked (meter TEXT PRIMARY KEY, acked_upto INTEGER) WITHOUT ROWID;"
    )
    (meter,) = build_meters(fleet_specs(["C"]), SEED, ZoneInfo(TZ), START, "classic")
    readings = advance(meter, START + 50)
    with outbox._conn:
        outbox._conn.executemany(
            "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r.meter, r.seq, r.ts, r.ac_kwh, r.geyser_kwh, r.overall_kwh, encode_reading(r)) for r in readings],
        )
        outbox._conn.execute("INSERT INTO acked VALUES ('C', 44)")
    resumed = resume(outbox, ["A", "C"])
    assert resumed == {"C": Resumed(meter.state, 44)}
