"""simulator.live.delivery: what the broker acknowledged, what is in flight, what waits in the outbox to be sent."""

from __future__ import annotations

from simulator.live.delivery import BACKLOG_IN_FLIGHT, Delivery, HeldPayloads


def test_a_fresh_meter_has_nothing_to_resend() -> None:
    delivery = Delivery()
    assert delivery.acked_upto() is None
    assert delivery.next_chunk(100) is None
    assert delivery.unsaved() is None


def test_acknowledged_upto_is_the_lowest_unacknowledged_seq_minus_one() -> None:
    delivery = Delivery()
    delivery.sent(1, 0, 0)
    delivery.sent(2, 1, 1)
    delivery.sent(3, 2, 9)
    assert delivery.acked_upto() == -1  # not even seq 0
    delivery.acked(2)  # out of order: seq 1 acknowledged, 0 not
    assert delivery.acked_upto() == -1
    delivery.acked(1)
    assert delivery.acked_upto() == 1
    delivery.acked(3)
    assert delivery.acked_upto() == 9
    delivery.acked(99)  # a replay's message id: ignored
    assert delivery.acked_upto() == 9


def test_unsaved_reports_each_move_once() -> None:
    delivery = Delivery(acked_upto=4)
    assert delivery.unsaved() is None
    delivery.sent(7, 5, 5)
    delivery.acked(7)
    assert delivery.unsaved() == 5
    assert delivery.unsaved() is None


def test_a_restarted_meter_resends_what_was_never_acknowledged() -> None:
    delivery = Delivery(acked_upto=41, last_seq=100)
    assert delivery.acked_upto() == 41
    assert delivery.waiting == 59
    assert delivery.next_chunk(50) == (42, 91)
    delivery.sent(1, 42, 91)
    assert delivery.next_chunk(50) == (92, 100)
    delivery.sent(2, 92, 100)
    assert delivery.next_chunk(50) is None
    assert delivery.acked_upto() == 41
    delivery.acked(1)
    delivery.acked(2)
    assert delivery.acked_upto() == 100


def test_an_outbox_with_no_acknowledgement_resends_from_seq_zero() -> None:
    assert Delivery(acked_upto=None, last_seq=9).next_chunk(100) == (0, 9)
    assert Delivery(acked_upto=9, last_seq=9).next_chunk(100) is None


def test_readings_held_while_disconnected_are_sent_oldest_first_in_ranges() -> None:
    delivery = Delivery(acked_upto=9)
    for seq in range(10, 20):  # one reading a second while the broker is away: one range
        delivery.held(seq, seq)
    assert list(delivery.backlog) == [[10, 19]]
    assert delivery.acked_upto() == 9
    delivery.sent(1, 20, 20)  # live again: the new reading goes at once
    first, last = delivery.next_chunk(4) or (0, 0)
    assert (first, last) == (10, 13)
    delivery.sent(2, first, last)
    delivery.acked(1)
    delivery.acked(2)
    assert delivery.acked_upto() == 13  # 14..19 still held
    for _ in range(3):
        chunk = delivery.next_chunk(4)
        if chunk is not None:
            delivery.sent(10 + chunk[0], *chunk)
    assert delivery.waiting == 0


def test_backlog_waits_while_many_messages_are_in_flight() -> None:
    delivery = Delivery(acked_upto=-1, last_seq=10_000)
    sent = 0
    while (chunk := delivery.next_chunk(200)) is not None and sent < 100:
        delivery.sent(sent, *chunk)
        sent += 1
    assert sent == BACKLOG_IN_FLIGHT  # flow control: the rest waits for acknowledgements
    delivery.acked(0)
    assert delivery.next_chunk(200) is not None


def test_a_refused_chunk_goes_back_to_the_front() -> None:
    delivery = Delivery(acked_upto=-1, last_seq=99)
    chunk = delivery.next_chunk(10)
    assert chunk == (0, 9)
    delivery.held(*chunk)  # paho refused it
    assert delivery.next_chunk(10) == (0, 9)


def test_held_payloads_are_taken_in_chunks_and_bounded() -> None:
    held = HeldPayloads(limit=10)
    held.keep("A", 5, [b"5", b"6"])
    held.keep("A", 7, [b"7", b"8", b"9"])  # consecutive: one run
    held.keep("B", 0, [b"b0"])
    assert held.count == 6
    held.keep("A", 20, [b"x"] * 5)  # no room: not kept (reproduced later instead)
    assert held.count == 6
    assert held.take("A", 6, 7) == [b"6", b"7"]  # seq 5 is older than what is sent now: forgotten
    assert held.count == 3
    assert held.take("A", 8, 12) is None  # not all kept
    assert held.take("A", 8, 9) == [b"8", b"9"]
    assert held.take("A", 10, 10) is None
    assert held.take("B", 0, 0) == [b"b0"]
    assert held.count == 0
    held.keep("A", 30, [b"30", b"31"])
    held.keep("A", 40, [b"40"])  # a gap: another run
    assert held.take("A", 31, 40) is None
    assert held.take("A", 40, 40) == [b"40"]
    assert held.count == 0
