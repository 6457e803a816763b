"""bridge.repair and the replay request of the wire contract."""

from __future__ import annotations

import json

import pytest

from bridge.history import History
from bridge.repair import ATTEMPTS, REPAIR_AFTER_S, RETRY_S, GapRepairer
from config.errors import PayloadError
from config.wire import MAX_REPLAY, Reading, decode_replay, encode_replay

T0 = 1_704_067_200


def _add(history: History, seq: int) -> None:
    history.add(Reading("A", seq, T0 + seq, 0.0, 0.0, 500.0, 0.0, 0.0, 0.0))


def test_asks_after_a_while_retries_and_gives_up() -> None:
    history = History(3600)
    for seq in (0, 1, 5):
        _add(history, seq)
    sent: list[tuple[str, dict[str, int]]] = []
    now = [100.0]
    repairer = GapRepairer(history, lambda t, p, q, r: sent.append((t, json.loads(p))) is None, lambda: now[0])
    assert repairer.step() == 0  # just seen: in-flight readings get their chance first
    now[0] += REPAIR_AFTER_S
    assert repairer.step() == 1
    assert sent == [("meters/A/cmd/replay", {"from_seq": 2, "to_seq": 4})]
    assert repairer.step() == 0  # not again before RETRY_S
    for _ in range(ATTEMPTS):
        now[0] += RETRY_S
        repairer.step()
    assert len(sent) == ATTEMPTS
    assert repairer.given_up == 3


def test_a_repaired_gap_is_forgotten() -> None:
    history = History(3600)
    for seq in (0, 3):
        _add(history, seq)
    now = [0.0]
    repairer = GapRepairer(history, lambda t, p, q, r: True, lambda: now[0])
    assert repairer.step() == 0
    now[0] += REPAIR_AFTER_S
    assert repairer.step() == 1
    _add(history, 1)
    _add(history, 2)
    assert repairer.step() == 0
    assert repairer.tracked() == 0
    assert repairer.meter_state("A") is None
    assert history.summary("A").gaps_repaired == 2


def test_replay_request_round_trip_and_bounds() -> None:
    assert decode_replay(encode_replay(3, 9)) == (3, 9)
    for bad in (
        b'{"from_seq": 5, "to_seq": 4}',
        b'{"from_seq": -1, "to_seq": 4}',
        b'{"from_seq": 1}',
        b'{"from_seq": true, "to_seq": 4}',
        json.dumps({"from_seq": 0, "to_seq": MAX_REPLAY}).encode(),
        b"[1, 2]",
        b"nope",
    ):
        with pytest.raises(PayloadError):
            decode_replay(bad)
