"""bridge.ingest.messages: Ingest.handle stores valid messages, never raises, and counts rejects by reason."""

from __future__ import annotations

import json
import logging

import pytest

from bridge.ingest.history import History
from bridge.ingest.messages import Ingest
from config.wire import REASONS, Reading, encode_reading

T0 = 1_704_067_200
TOPIC = "meters/A/reading"


def payload(at: int = T0, **changes: object) -> bytes:
    """A valid reading of meter A for second ``at``, with some JSON fields replaced."""
    doc = json.loads(encode_reading(Reading("A", at - T0, at, 1500.0, 0.0, 2100.0, 0.1, 0.0, 0.2)))
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.fixture
def ingest() -> Ingest:
    return Ingest(History(3600))


def test_accepts_and_counts_duplicates(ingest: Ingest) -> None:
    assert ingest.handle(TOPIC, payload(T0))
    assert ingest.handle(TOPIC, payload(T0 + 1))
    assert not ingest.handle(TOPIC, payload(T0))
    assert ingest.counters() == {"accepted": 2, "duplicates": 1, "rejected": {}}
    assert ingest.history.watermark("A") == T0 + 2
    samples, present = ingest.history.samples("A", T0, T0 + 2)
    assert present == 2
    assert samples[0].tolist() == [1.5, 0.0, 2.1]


@pytest.mark.parametrize("status", ["online", "offline"])
def test_status(ingest: Ingest, status: str) -> None:
    assert ingest.handle("meters/B/status", status.encode())
    assert ingest.history.summary("B").status == status
    assert ingest.counters() == {"accepted": 0, "duplicates": 0, "rejected": {}}


@pytest.mark.parametrize(
    ("topic", "data", "reason"),
    [
        ("meters/A", payload(), "bad_topic"),
        ("meters/A+/reading", payload(), "bad_topic"),
        ("", payload(), "bad_topic"),
        ("meters/A/status", b"maybe", "bad_status"),
        (TOPIC, b"x" * (64 * 1024 + 1), "too_large"),
        (TOPIC, b"\xc3\x28", "bad_utf8"),
        (TOPIC, b"{not json", "bad_json"),
        (TOPIC, payload().replace(b"1500.0", b"NaN"), "bad_json"),
        (TOPIC, b"[1]", "not_object"),
        (TOPIC, b"{}", "missing_key"),
        (TOPIC, payload(extra=True), "unknown_key"),
        (TOPIC, payload(seq=True), "bad_type"),
        (TOPIC, payload(overall_w="2100"), "bad_type"),
        (TOPIC, payload(ac_w=5e8), "out_of_range"),
        (TOPIC, payload(ac_kwh=-1.0), "out_of_range"),
        (TOPIC, payload(ts="yesterday"), "bad_ts"),
        (TOPIC, payload(meter="B"), "meter_mismatch"),
    ],
)
def test_rejects_by_reason(ingest: Ingest, topic: str, data: bytes, reason: str) -> None:
    assert reason in REASONS
    assert not ingest.handle(topic, data)
    assert not ingest.handle(topic, data)
    assert ingest.counters() == {"accepted": 0, "duplicates": 0, "rejected": {reason: 2}}
    assert ingest.history.meters() == []


def test_internal_error_is_counted_not_raised(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(reading: Reading) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(ingest.history, "put", broken)
    with caplog.at_level(logging.ERROR, logger="bridge.ingest.messages"):
        assert not ingest.handle(TOPIC, payload())
    assert ingest.counters()["rejected"] == {"internal": 1}
    assert "internal error" in caplog.text


def test_first_reject_of_a_reason_is_logged(ingest: Ingest, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bridge.ingest.messages"):
        for _ in range(3):
            ingest.handle(TOPIC, b"nope")
    assert [r.getMessage()[:33] for r in caplog.records] == ["rejected message #1 for bad_json "]


def test_a_batch_is_taken_element_by_element(ingest: Ingest) -> None:
    batch = b"[" + b",".join([payload(T0), payload(T0 + 1), b'{"seq": 1}', payload(T0 + 2, ac_w="x")]) + b"]"
    assert ingest.handle("meters/A/readings", batch)
    assert ingest.counters() == {"accepted": 2, "duplicates": 0, "rejected": {"missing_key": 1, "bad_type": 1}}
    assert not ingest.handle("meters/A/readings", b"[" + payload(T0) + b"]")  # only a duplicate
    assert ingest.counters()["duplicates"] == 1
    assert ingest.rejected_of("A") == {"missing_key": 1, "bad_type": 1}
    assert not ingest.handle("meters/A/readings", b"[]")
    assert ingest.counters()["rejected"] == {"missing_key": 1, "bad_type": 1, "out_of_range": 1}
