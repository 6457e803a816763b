"""config.topics: the topic builders, a meter's topic parsed back, and the meter id pattern."""

from __future__ import annotations

import pytest

from config.topics import parse_topic, reading_topic, status_topic, valid_meter_id


def test_parse_topic_and_builders() -> None:
    assert parse_topic(reading_topic("A")) == ("A", "reading")
    assert parse_topic(status_topic("x_9-Z")) == ("x_9-Z", "status")
    long_id = "a" * 64
    assert parse_topic(f"meters/{long_id}/reading") == (long_id, "reading")


@pytest.mark.parametrize(
    ("meter_id", "valid"),
    [
        ("A", True),
        ("a" * 64, True),
        ("Z-9_z", True),
        ("a" * 65, False),
        ("", False),
        ("A+", False),
        ("A#", False),
        ("A/B", False),
        ("A\x00", False),
        ("A\n", False),
        ("A B", False),
        ("é", False),
        (5, False),
        (None, False),
    ],
)
def test_valid_meter_id(meter_id: object, valid: bool) -> None:
    assert valid_meter_id(meter_id) is valid
