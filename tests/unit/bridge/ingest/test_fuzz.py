"""Property-based fuzzing of MQTT input (hypothesis): whatever arrives, the bridge never raises and counts every reject
once, by a reason of ``config.wire.REASONS``.

The properties: arbitrary topics and payload bytes through ``Ingest.handle``; near-miss readings (a valid reading with
a few fields dropped, added or broken; values nested to any depth) are either decoded exactly or rejected for the reason
their fault implies; garbage never changes another meter's history; arbitrary topic bytes through the subscriber seam
(``Subscriber._handle``, fed PUBLISH packets). No broker, no sleeps, no example database: each example builds its own
``History``.
Run with ``--hypothesis-show-statistics`` to see which outcomes the examples reached.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from bridge.ingest.history import History, MeterSummary
from bridge.ingest.messages import Ingest
from bridge.ingest.subscriber import Subscriber
from config.errors import PayloadError
from config.mqtt.packet import MAX_STRING, puback_packets
from config.settings import BrokerAddress
from config.topics import parse_topic, reading_topic, status_topic
from config.wire import (
    ENERGY_FIELDS,
    MAX_ABS_POWER_W,
    MAX_ENERGY_KWH,
    MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    MAX_TS,
    MIN_TS,
    POWER_FIELDS,
    READING_FIELDS,
    REASONS,
    Reading,
    decode_reading,
    decode_status,
    encode_reading,
)
from tests.support.strategies import ENERGIES, POWERS
from tests.support.subscriber import deliver

FUZZ = settings(deadline=None, database=None)
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
A = "A"  # the meter whose history garbage must not touch
CAPACITY_S = 60
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Written here, not imported: the oracle for "is this a meter topic" must not be the code under test.
METER_TOPIC_RE = re.compile(r"meters/([A-Za-z0-9_-]{1,64})/(reading|status)")
TS_SHAPE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
INT_DIGITS_LIMIT = sys.get_int_max_str_digits()  # json.loads refuses longer integer literals (a ValueError)


# --- counting what one message did ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """A copy of an ``Ingest``'s counters."""

    accepted: int
    duplicates: int
    rejected: Counter[str]


def tally(ingest: Ingest) -> Tally:
    """Snapshot of ``ingest``'s counters."""
    return Tally(ingest.accepted, ingest.duplicates, Counter(ingest.rejected))


def change(before: Tally, after: Tally) -> str:
    """What one message did: ``accepted``, ``duplicate``, ``none`` (a status) or the one reject reason it counted."""
    deltas = {"accepted": after.accepted - before.accepted, "duplicate": after.duplicates - before.duplicates}
    deltas.update({reason: after.rejected[reason] - before.rejected[reason] for reason in after.rejected})
    moved = {name: delta for name, delta in deltas.items() if delta}
    assert all(delta == 1 for delta in moved.values()), f"a counter moved by more than one: {moved}"
    assert len(moved) <= 1, f"one message moved several counters: {moved}"
    return next(iter(moved), "none")


def feed(ingest: Ingest, topic: str, payload: bytes) -> tuple[bool, str]:
    """``Ingest.handle`` (which must not raise) and what it did; a reject is always one of ``REASONS``."""
    before = tally(ingest)
    stored = ingest.handle(topic, payload)
    what = change(before, tally(ingest))
    assert what != "internal"
    assert what in {"accepted", "duplicate", "none", *REASONS}
    assert stored is (what in ("accepted", "none")), (stored, what)
    return stored, what


def fresh_ingest() -> Ingest:
    """An ``Ingest`` over an empty in-memory history, on a fixed clock."""
    return Ingest(History(CAPACITY_S), clock=lambda: float(T0))


def decode_reason(topic: str, payload: bytes) -> str | None:
    """The reason ``config.wire`` rejects a message for (None if it is a valid reading or status)."""
    try:
        _, kind = parse_topic(topic)
        if kind == "status":
            decode_status(topic, payload)
        else:
            decode_reading(topic, payload)
    except PayloadError as exc:
        return exc.reason
    return None


# --- strategies: raw topics and payloads ----------------------------------------------------------------------------

TOPIC_CHARS = st.one_of(
    st.sampled_from(["+", "#", "/", "\x00", "\n", "\t", "\x7f", " ", "$", "é", "\u200b", "\ufeff", "\U0001f600"]),
    st.characters(),  # any code point but the surrogates
    st.characters(categories=["Cs"]),  # lone surrogates (a str can hold them; UTF-8 cannot)
    st.characters(categories=["Cc"]),
)
METER_IDS = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
ID_LIKE = st.one_of(
    METER_IDS,
    st.text(TOPIC_CHARS, max_size=70),
    st.sampled_from(["", "+", "#", "A+", "A#", "A B", "A\x00", "é", "A/B", "\u0410"]),  # \u0410: Cyrillic A
    st.integers(60, 70).map(lambda n: "a" * n),  # around the 64-character limit
)
ROOTS = st.sampled_from(["meters", "Meters", "METERS", "meter", "", " meters", "meters ", "+", "#", "$SYS"])
KINDS = st.sampled_from(["reading", "status", "Reading", "reading ", "readings", "", "+", "#", "agg/60s", "reading/"])
STRUCTURED_TOPICS = st.builds(
    lambda root, meter, kind: f"{root}/{meter}/{kind}",
    ROOTS | st.text(TOPIC_CHARS, max_size=10),
    ID_LIKE,
    KINDS | st.text(TOPIC_CHARS, max_size=10),
)
LONG_TOPICS = st.builds(lambda unit, n: unit * n, st.text(TOPIC_CHARS, min_size=1, max_size=8), st.integers(1, 20_000))
TOPICS = st.one_of(st.text(TOPIC_CHARS, max_size=80), STRUCTURED_TOPICS, LONG_TOPICS)

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=8,
)
# Big payloads cost nothing to build: a short unit repeated (up to 160 KiB, well past MAX_PAYLOAD_BYTES).
REPEATED_PAYLOADS = st.builds(
    lambda unit, n, tail: unit * n + tail,
    st.binary(min_size=1, max_size=4),
    st.integers(0, 40_000),
    st.binary(max_size=8),
)
AT_THE_LIMIT = st.builds(
    lambda byte, extra: byte * (MAX_PAYLOAD_BYTES + extra), st.binary(min_size=1, max_size=1), st.integers(-2, 2)
)
STATUS_LIKE = st.sampled_from(
    [
        b"online",
        b"offline",
        b"ONLINE",
        b"Online",
        b"online\n",
        b" online",
        b"online\x00",
        b"",
        b"\xff",
        b'"online"',
        b"off",
    ]
)
PAYLOADS = st.one_of(
    st.binary(max_size=300),
    REPEATED_PAYLOADS,
    AT_THE_LIMIT,
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    STATUS_LIKE,
)

# --- strategies: valid readings -------------------------------------------------------------------------------------

ALL_EPOCHS = st.integers(MIN_TS, MAX_TS - 1)


def readings(
    meters: st.SearchStrategy[str] = METER_IDS, ts: st.SearchStrategy[int] = ALL_EPOCHS
) -> st.SearchStrategy[Reading]:
    """Valid readings of ``meters`` at seconds ``ts``."""
    return st.builds(
        Reading,
        meter=meters,
        seq=st.integers(0, MAX_SEQ),
        ts=ts,
        ac_w=POWERS,
        geyser_w=POWERS,
        overall_w=POWERS,
        ac_kwh=ENERGIES,
        geyser_kwh=ENERGIES,
        overall_kwh=ENERGIES,
    )


def pad(reading: Reading, size: int) -> tuple[str, bytes]:
    """The reading's message, its payload padded with JSON whitespace to ``size`` bytes."""
    payload = encode_reading(reading)
    return reading_topic(reading.meter), payload + b" " * (size - len(payload))


@st.composite
def mangled_topics(draw: st.DrawFn, meter: str) -> str:
    """A topic that is not ``meter``'s reading topic, though it looks much like it."""
    topic = reading_topic(meter)
    return draw(
        st.sampled_from(
            [
                topic + "/",
                topic + " ",
                topic + "\x00",
                "/" + topic,
                "$" + topic,
                topic.replace("/", "//", 1),
                topic.upper(),
                f"meters/{meter}/Reading",
                f"meters/{meter}",
                f"meters/{meter}+/reading",
                f"meters/{meter} /reading",
                f"meters/\u0410{meter}/reading",
                f"meters/{meter}/agg/60s",
                "meters/+/reading",
                "meters/#",
                "#",
                status_topic(meter),
            ]
        )
    )


VALID_MESSAGES = st.one_of(
    readings().map(lambda reading: (reading_topic(reading.meter), encode_reading(reading))),
    st.builds(pad, readings(), st.integers(MAX_PAYLOAD_BYTES - 2, MAX_PAYLOAD_BYTES + 2)),
    st.builds(lambda meter, word: (status_topic(meter), word), METER_IDS, st.sampled_from([b"online", b"offline"])),
)
VALID_PAYLOADS_ON_WRONG_TOPICS = readings().flatmap(
    lambda reading: st.tuples(mangled_topics(reading.meter), st.just(encode_reading(reading)))
)

# --- strategies: near-miss readings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fate:
    """What becomes of one field of a valid reading."""

    text: str | None  # the value's JSON text; None: the key is left out
    reason: str | None  # the reason this fault alone must be rejected for; None: still a valid value
    value: Any = None  # what a valid value decodes to


def valid(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Fate]:
    """Valid JSON values (each decodes to itself)."""
    return values.map(lambda v: Fate(json.dumps(v, ensure_ascii=False), None, v))


def faulty(reason: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Fate]:
    """JSON values that must be rejected for ``reason``."""
    return values.map(lambda v: Fate(json.dumps(v, ensure_ascii=False), reason))


def faulty_text(reason: str, texts: st.SearchStrategy[str]) -> st.SearchStrategy[Fate]:
    """Raw JSON (or not-quite-JSON) text that must be rejected for ``reason``."""
    return texts.map(lambda text: Fate(text, reason))


def huge_int_fate(reason: str) -> st.SearchStrategy[Fate]:
    """Integer literals of hundreds of digits (floats overflow past 309); past Python's digit limit (4300), json.loads
    refuses them, so they are not JSON to us."""

    def fate(sign: str, lead: str, body: str, count: int) -> Fate:
        text = sign + (lead + body * count)[:count]
        return Fate(text, "bad_json" if count > INT_DIGITS_LIMIT else reason)

    counts = st.one_of(st.integers(100, 1000), st.integers(INT_DIGITS_LIMIT - 2, INT_DIGITS_LIMIT + 2))
    return st.builds(
        fate, st.sampled_from(["", "-"]), st.sampled_from("123456789"), st.sampled_from(["0", "9", "271828"]), counts
    )


def kinds(*groups: st.SearchStrategy[Fate]) -> st.SearchStrategy[Fate]:
    """One kind of fault, each as likely as the others (``st.one_of`` would weigh its flattened branches instead)."""
    return st.sampled_from(groups).flatmap(lambda group: group)


DROPPED = st.just(Fate(None, "missing_key"))
NOT_FINITE = faulty_text("bad_json", st.sampled_from(["NaN", "Infinity", "-Infinity"]))  # Python's json would take them
DEEP_JSON = faulty_text("bad_json", st.just("[" * 20_000 + "]" * 20_000))  # deeper than the recursion limit
OVERFLOWING = st.sampled_from(["1e400", "-1e400", "1E+999", "-2.5e309"])  # parse to +-inf floats
BOOLS = st.booleans()
STRS = st.text(max_size=12)
LISTS = st.lists(JSON_SCALARS, max_size=3)
DICTS = st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=3)
NESTED = st.integers(1, 200).map(lambda depth: "[" * depth + "]" * depth)
ANY_NON_STRING = st.one_of(
    st.none(), BOOLS, st.integers(), st.floats(allow_nan=False, allow_infinity=False), LISTS, DICTS
)


def iso(moment: datetime) -> str:
    """The contract's timestamp text, formatted here (not by ``config.wire.format_ts``) with a 4-digit year."""
    d = moment
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"


def at(epoch_s: int) -> datetime:
    """Naive UTC datetime of epoch seconds."""
    return (EPOCH + timedelta(seconds=epoch_s)).replace(tzinfo=None)


@st.composite
def impossible_ts(draw: st.DrawFn) -> str:
    """A well-shaped timestamp with one impossible field (month 13, Feb 30, 24:00, second 60, year 0, ...)."""
    d = draw(st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)))
    fields = {"year": d.year, "month": d.month, "day": d.day, "hour": d.hour, "minute": d.minute, "second": d.second}
    which = draw(st.sampled_from(["year", "month", "day", "hour", "minute", "second"]))
    days = calendar.monthrange(d.year, d.month)[1]
    fields[which] = draw(
        {
            "year": st.just(0),
            "month": st.sampled_from([0, *range(13, 100)]),
            "day": st.sampled_from([0, *range(days + 1, 100)]),
            "hour": st.integers(24, 99),
            "minute": st.integers(60, 99),
            "second": st.integers(60, 99),
        }[which]
    )
    f = fields
    return f"{f['year']:04d}-{f['month']:02d}-{f['day']:02d}T{f['hour']:02d}:{f['minute']:02d}:{f['second']:02d}Z"


def misshapen(text: str, how: int) -> str:
    """A valid timestamp text bent out of the contract's shape."""
    arabic = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")
    variants = [
        text.replace("T", " "),
        text[:-1],
        text[:-1] + "+00:00",
        text[:-1] + ".5Z",
        text[:-1] + ".000Z",
        text.lower(),
        " " + text,
        text + " ",
        text + "\n",
        text.replace("-", "/"),
        text.translate(arabic),
        text.replace("T", "t"),
        text[:5] + text[6:],  # drops a month digit
        text + text,
        "",
    ]
    return variants[how % len(variants)]


VALID_TS_EPOCHS = st.one_of(st.integers(MIN_TS, MAX_TS - 1), st.sampled_from([MIN_TS, MAX_TS - 1]))
OUT_OF_RANGE_MOMENTS = st.one_of(
    st.datetimes(datetime(1, 1, 1), datetime(1999, 12, 31, 23, 59, 59)),
    st.datetimes(datetime(2200, 1, 1), datetime(9999, 12, 31, 23, 59, 59)),
    st.sampled_from([at(MIN_TS - 1), at(MAX_TS)]),
)
BAD_TS_TEXTS = st.one_of(
    impossible_ts(),
    st.builds(misshapen, VALID_TS_EPOCHS.map(lambda s: iso(at(s))), st.integers(0, 100)),
    st.text(max_size=25).filter(lambda text: TS_SHAPE_RE.fullmatch(text) is None),
)


def meter_fates(meter: str) -> tuple[st.SearchStrategy[Fate], st.SearchStrategy[Fate]]:
    """(valid, faulty) fates of the ``meter`` field on ``meter``'s topic."""
    others = st.one_of(
        METER_IDS,
        st.text(max_size=10),
        st.sampled_from(
            [
                meter.lower(),
                meter.upper(),
                meter + " ",
                " " + meter,
                meter + "\n",
                meter + "\x00",
                meter + "/",
                "+",
                "#",
            ]
        ),
    ).map(lambda other: other if other != meter else other + "_")
    wrong = kinds(
        faulty("meter_mismatch", others),
        st.one_of(
            faulty("meter_mismatch", ANY_NON_STRING | st.just([meter]) | st.just({"id": meter})),
            faulty_text("meter_mismatch", NESTED | st.just('"\\ud800"')),  # nested lists; a lone surrogate, escaped
        ),
        huge_int_fate("meter_mismatch"),
        NOT_FINITE,
        DROPPED,
    )
    return valid(st.just(meter)), wrong


def seq_fates() -> tuple[st.SearchStrategy[Fate], st.SearchStrategy[Fate]]:
    """(valid, faulty) fates of ``seq``."""
    good = st.one_of(valid(st.integers(0, MAX_SEQ) | st.sampled_from([0, MAX_SEQ])), st.just(Fate("-0", None, 0)))
    wrong = kinds(
        faulty("out_of_range", st.integers(max_value=-1) | st.integers(min_value=MAX_SEQ + 1)),
        huge_int_fate("out_of_range"),
        faulty("bad_type", st.one_of(BOOLS, STRS, LISTS, DICTS, st.none())),
        st.one_of(  # 7.0 is not an integer
            faulty("bad_type", st.floats(allow_nan=False, allow_infinity=False)),
            faulty_text("bad_type", OVERFLOWING | st.sampled_from(["1e2", "7.0", "0.0"])),
        ),
        NOT_FINITE,
        DROPPED,
    )
    return good, wrong


def ts_fates(epochs: st.SearchStrategy[int]) -> tuple[st.SearchStrategy[Fate], st.SearchStrategy[Fate]]:
    """(valid, faulty) fates of ``ts``; valid ones are at ``epochs``."""
    good = epochs.map(lambda s: Fate(json.dumps(iso(at(s))), None, s))
    wrong = kinds(
        OUT_OF_RANGE_MOMENTS.map(lambda d: Fate(json.dumps(iso(d)), "out_of_range")),
        faulty("bad_ts", BAD_TS_TEXTS) | faulty_text("bad_ts", st.just('"\\udc80"')),
        st.one_of(
            faulty("bad_type", ANY_NON_STRING),
            faulty("bad_type", st.integers(MIN_TS, MAX_TS - 1)),  # epoch seconds are not the contract's text
            faulty_text("bad_type", OVERFLOWING | NESTED),
        ),
        huge_int_fate("bad_type"),
        NOT_FINITE,
        DROPPED,
    )
    return good, wrong


def power_fates() -> tuple[st.SearchStrategy[Fate], st.SearchStrategy[Fate]]:
    """(valid, faulty) fates of a power (W, or null)."""
    limit = int(MAX_ABS_POWER_W)
    good = valid(
        st.one_of(
            st.none(),
            st.floats(-MAX_ABS_POWER_W, MAX_ABS_POWER_W),
            st.integers(-limit, limit),
            st.sampled_from([MAX_ABS_POWER_W, -MAX_ABS_POWER_W, -0.0, 0]),
        )
    )
    absurd = st.one_of(
        st.floats(min_value=MAX_ABS_POWER_W, exclude_min=True, allow_infinity=False),
        st.floats(max_value=-MAX_ABS_POWER_W, exclude_max=True, allow_infinity=False),
        st.integers(min_value=limit + 1),
        st.integers(max_value=-limit - 1),
    )
    wrong = kinds(
        faulty("out_of_range", absurd) | faulty_text("out_of_range", OVERFLOWING),
        huge_int_fate("out_of_range"),
        faulty("bad_type", st.one_of(BOOLS, STRS, LISTS, DICTS)) | faulty_text("bad_type", NESTED),
        NOT_FINITE | DEEP_JSON,
        DROPPED,
    )
    return good, wrong


def energy_fates() -> tuple[st.SearchStrategy[Fate], st.SearchStrategy[Fate]]:
    """(valid, faulty) fates of an energy register (kWh, never negative)."""
    limit = int(MAX_ENERGY_KWH)
    good = valid(
        st.one_of(
            st.floats(0.0, MAX_ENERGY_KWH), st.integers(0, limit), st.sampled_from([0.0, -0.0, MAX_ENERGY_KWH, 0])
        )
    )
    absurd = st.one_of(
        st.floats(max_value=-5e-324, allow_infinity=False),  # negative energies (-0.0 is zero, and valid)
        st.floats(min_value=MAX_ENERGY_KWH, exclude_min=True, allow_infinity=False),
        st.integers(max_value=-1),
        st.integers(min_value=limit + 1),
    )
    wrong = kinds(
        faulty("out_of_range", absurd) | faulty_text("out_of_range", OVERFLOWING),
        huge_int_fate("out_of_range"),
        faulty("bad_type", st.one_of(BOOLS, STRS, LISTS, DICTS, st.none())) | faulty_text("bad_type", NESTED),
        NOT_FINITE,
        DROPPED,
    )
    return good, wrong


EXTRA = "<extra keys>"
EXTRA_KEYS = st.dictionaries(
    st.one_of(st.text(max_size=10), st.sampled_from(["Meter", "SEQ", "ac_W", "meter ", "ts\x00", "extra", ""])).filter(
        lambda key: key not in READING_FIELDS
    ),
    JSON_VALUES.map(lambda value: json.dumps(value, ensure_ascii=False)),
    min_size=1,
    max_size=3,
)


@dataclass(frozen=True)
class NearMiss:
    """A reading message built from a valid one with a few fields broken; knows how it must be judged."""

    topic: str
    payload: bytes
    faults: frozenset[str]  # the reasons each broken field alone implies
    expected: Reading | None  # what a message without faults must decode to

    def reasons(self) -> frozenset[str]:
        """The reject reasons allowed: none if valid, else one of the faults (a payload that is not JSON wins)."""
        if len(self.payload) > MAX_PAYLOAD_BYTES:
            return frozenset({"too_large"})
        if "bad_json" in self.faults:
            return frozenset({"bad_json"})
        return self.faults


@st.composite
def near_misses(
    draw: st.DrawFn,
    meters: st.SearchStrategy[str] = METER_IDS,
    epochs: st.SearchStrategy[int] = VALID_TS_EPOCHS,
    min_faults: int = 0,
) -> NearMiss:
    """A valid reading's JSON with up to three fields dropped, broken or added; key order and spacing vary too."""
    meter = draw(meters)
    fates_of = {"meter": meter_fates(meter), "seq": seq_fates(), "ts": ts_fates(epochs)}
    fates_of.update({name: power_fates() for name in POWER_FIELDS})
    fates_of.update({name: energy_fates() for name in ENERGY_FIELDS})
    how_many = max(min_faults, draw(st.sampled_from([1, 0, 1, 2, 1, 3])))  # mostly one fault: its reason is exact
    broken = draw(st.sets(st.sampled_from([*READING_FIELDS, EXTRA]), min_size=how_many, max_size=how_many))
    fates = {name: draw(fates_of[name][1] if name in broken else fates_of[name][0]) for name in READING_FIELDS}
    extras: dict[str, str] = draw(EXTRA_KEYS) if EXTRA in broken else {}
    members = [(name, fate.text) for name, fate in fates.items() if fate.text is not None] + list(extras.items())
    members = draw(st.permutations(members))
    comma, colon, edge = draw(st.sampled_from([(", ", ": ", ""), (",", ":", ""), (" ,\n\t", " :\r\n", " \n")]))
    text = edge + "{" + comma.join(f"{json.dumps(key)}{colon}{value}" for key, value in members) + "}" + edge
    faults = {fate.reason for fate in fates.values() if fate.reason is not None} | (
        {"unknown_key"} if extras else set()
    )
    expected = None if faults else Reading(**{name: fate.value for name, fate in fates.items()})
    return NearMiss(reading_topic(meter), text.encode("utf-8"), frozenset(faults), expected)


METER_TOPICS = st.builds(lambda build, meter: build(meter), st.sampled_from([reading_topic, status_topic]), METER_IDS)
MESSAGES = st.one_of(
    st.tuples(TOPICS, PAYLOADS),
    st.tuples(METER_TOPICS, PAYLOADS),  # garbage on a good topic gets past the topic check
    st.tuples(METER_TOPICS, AT_THE_LIMIT),
    VALID_MESSAGES,
    VALID_PAYLOADS_ON_WRONG_TOPICS,
    near_misses().map(lambda near: (near.topic, near.payload)),
)

# --- property 1: arbitrary topics and payloads ----------------------------------------------------------------------


@settings(FUZZ, max_examples=400)
@given(message=MESSAGES)
@example(message=("meters/A/reading", b"\xff" * (MAX_PAYLOAD_BYTES + 1)))
@example(message=("meters/A/reading", b"{" * MAX_PAYLOAD_BYTES))
@example(message=("meters/A/reading", b"[]"))
@example(message=("meters/A/reading", b"{}"))
@example(message=("meters/+/reading", b"{}"))
@example(message=("meters/#", b""))
@example(message=("meters/A\x00/status", b"online"))
@example(message=("meters/\ud800/reading", b"\x00\x01\xfe"))
@example(message=("x" * 100_000, b"\x80" * 70_000))
def test_handle_never_raises_and_counts_every_reject_once(message: tuple[str, bytes]) -> None:
    """Anything in: a new reading or status is True; all else is False and one reject of a REASONS reason."""
    topic, payload = message
    ingest = fresh_ingest()
    first = feed(ingest, topic, payload)
    again = feed(ingest, topic, payload)
    shape = METER_TOPIC_RE.fullmatch(topic)
    reason = decode_reason(topic, payload)
    event(f"outcome: {first[1]}")  # shown by pytest --hypothesis-show-statistics
    if len(payload) > MAX_PAYLOAD_BYTES:
        event("payload > MAX_PAYLOAD_BYTES")
    if shape is None:
        assert reason == "bad_topic"
    elif shape[2] == "status":
        assert reason == (None if payload in (b"online", b"offline") else "bad_status")
    elif len(payload) > MAX_PAYLOAD_BYTES:
        assert reason == "too_large"
    elif not is_utf8(payload):
        assert reason == "bad_utf8"
    if reason is not None:
        assert first == again == (False, reason)
    elif shape is not None and shape[2] == "status":
        assert first == again == (True, "none")
        assert ingest.history.summary(shape[1]).status == payload.decode()
    else:
        assert first == (True, "accepted")
        assert again == (False, "duplicate")
    if first[1] not in ("accepted", "none"):
        assert ingest.history.meters() == []


def is_utf8(payload: bytes) -> bool:
    """Whether ``payload`` is valid UTF-8."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- property 2: near-miss readings ---------------------------------------------------------------------------------


def rounded(reading: Reading) -> Reading:
    """The reading as the wire carries it: powers to 0.1 W, energies to 0.0001 kWh (0.1 Wh)."""

    def power(value: float | None) -> float | None:
        return None if value is None else round(float(value), 1)

    return replace(
        reading,
        ac_w=power(reading.ac_w),
        geyser_w=power(reading.geyser_w),
        overall_w=power(reading.overall_w),
        ac_kwh=round(float(reading.ac_kwh), 4),
        geyser_kwh=round(float(reading.geyser_kwh), 4),
        overall_kwh=round(float(reading.overall_kwh), 4),
    )


@settings(FUZZ, max_examples=600)
@given(near=near_misses())
def test_near_miss_readings_decode_exactly_or_are_rejected_for_their_fault(near: NearMiss) -> None:
    """No faults: accepted, decoded to the values written, and round-trips; faults: rejected for one of them."""
    ingest = fresh_ingest()
    stored, what = feed(ingest, near.topic, near.payload)
    allowed = near.reasons()
    event(f"outcome: {what}" + (" (one of several faults)" if len(allowed) > 1 else ""))
    if not allowed:
        assert (stored, what) == (True, "accepted")
        reading = decode_reading(near.topic, near.payload)
        assert reading == near.expected
        wire = decode_reading(near.topic, encode_reading(reading))
        assert wire == rounded(reading)  # the encoder rounds; nothing else may change
        assert decode_reading(near.topic, encode_reading(wire)) == wire  # and then it is a fixed point
        assert encode_reading(wire) == encode_reading(reading)
        return
    assert not stored
    assert what in allowed, f"rejected for {what!r}, expected one of {sorted(allowed)}"
    with pytest.raises(PayloadError) as info:
        decode_reading(near.topic, near.payload)
    assert info.value.reason == what
    assert ingest.history.meters() == []


@settings(FUZZ, max_examples=80)
@given(
    field=st.sampled_from(READING_FIELDS),
    depth=st.one_of(
        st.integers(1, 50),
        st.integers(sys.getrecursionlimit() - 300, sys.getrecursionlimit() + 50),  # where json.loads gives up
        st.integers(sys.getrecursionlimit(), 3 * sys.getrecursionlimit()),
    ),
    brackets=st.sampled_from([("[", "]"), ('{"k": ', "}"), ("[[0, ", "]]")]),
)
def test_deep_nesting_in_any_field_is_a_clean_reject(field: str, depth: int, brackets: tuple[str, str]) -> None:
    """A value nested to any depth is not JSON to us (too deep) or the field's wrong type; never an internal error."""
    doc = json.loads(encode_reading(Reading(A, 0, T0, 1500.0, None, 2100.0, 0.1, 0.0, 0.2)))
    doc[field] = None
    opening, closing = brackets
    text = json.dumps(doc).replace(f'"{field}": null', f'"{field}": {opening * depth}0{closing * depth}', 1)
    assert len(text) <= MAX_PAYLOAD_BYTES
    _, what = feed(fresh_ingest(), reading_topic(A), text.encode())
    own = "meter_mismatch" if field == "meter" else "bad_type"
    event(f"outcome: {what}")
    assert what in {"bad_json", own}
    if depth < 100:
        assert what == own
    if depth > sys.getrecursionlimit():
        assert what == "bad_json"


# --- property 3: garbage never touches another meter ----------------------------------------------------------------


def state_of(history: History, meter: str) -> tuple[object, ...]:
    """Everything ``history`` says about ``meter``: summary (counters, status, watermark), samples, last energies."""
    start, end = T0 - 2 * CAPACITY_S, T0 + 4 * CAPACITY_S
    values, present = history.samples(meter, start, end)
    return (
        meter in history.meters(),
        history.summary(meter),
        history.watermark(meter),
        history.first_ts(meter),
        values.tobytes(),
        present,
        history.last_energy(meter, start, end),
    )


def valid_for(meter: str, topic: str, payload: bytes) -> bool:
    """Whether the message is a valid reading or status of ``meter`` (not garbage for it)."""
    try:
        topic_meter, _ = parse_topic(topic)
    except PayloadError:
        return False
    return topic_meter == meter and decode_reason(topic, payload) is None


NEAR_A_EPOCHS = st.integers(T0 - 10, T0 + 2 * CAPACITY_S)
A_READINGS = readings(st.just(A), NEAR_A_EPOCHS)
OTHER_METERS = st.sampled_from(["B", "a", "A_", "AA", "-A"]) | METER_IDS.filter(lambda meter: meter != A)
GARBAGE = st.one_of(
    MESSAGES,
    near_misses(st.just(A), NEAR_A_EPOCHS, min_faults=1).map(lambda near: (near.topic, near.payload)),
    st.tuples(mangled_topics(A), A_READINGS.map(encode_reading)),  # A's valid readings on topics not A's
    st.tuples(OTHER_METERS.map(reading_topic), A_READINGS.map(encode_reading)),  # on other meters' topics: mismatch
    readings(OTHER_METERS, NEAR_A_EPOCHS).map(lambda reading: (reading_topic(reading.meter), encode_reading(reading))),
    st.tuples(OTHER_METERS.map(status_topic), st.sampled_from([b"online", b"offline"])),
    st.tuples(st.just(status_topic(A)), PAYLOADS),
)


@settings(FUZZ, max_examples=150)
@given(
    history_of_a=st.lists(A_READINGS, min_size=1, max_size=12, unique_by=lambda reading: reading.ts),
    garbage=st.lists(GARBAGE, max_size=25),
)
def test_garbage_never_touches_another_meter(history_of_a: list[Reading], garbage: list[tuple[str, bytes]]) -> None:
    """A's samples, watermark, counters and status are the same after any amount of messages not valid for A."""
    ingest = fresh_ingest()
    for reading in history_of_a:  # some may be too old for the ring: that is part of A's state too
        feed(ingest, reading_topic(A), encode_reading(reading))
    feed(ingest, status_topic(A), b"online")
    before = state_of(ingest.history, A)
    junk_status = False
    for topic, payload in garbage:
        if valid_for(A, topic, payload):  # not garbage (say, a generated "meters/A/status" "offline")
            continue
        feed(ingest, topic, payload)
        junk_status |= topic == status_topic(A)
    after = state_of(ingest.history, A)
    # Junk on A's own status topic makes A's status "unknown" (not "online": nobody knows); nothing else changes.
    summary = before[1]
    assert isinstance(summary, MeterSummary)
    expected = (before[0], replace(summary, status="unknown"), *before[2:]) if junk_status else before
    assert after == expected


# --- property 4: through the subscriber seam -------------------------------------------------------------------------

ROUTE = "homeassistant/status"
TOPIC_BYTES = st.one_of(
    st.binary(max_size=100),
    TOPICS.map(lambda topic: topic.encode("utf-8", "surrogatepass")),  # lone surrogates: not UTF-8
    st.builds(lambda meter, junk: f"meters/{meter}/reading".encode() + junk, METER_IDS, st.binary(max_size=4)),
    st.builds(lambda junk, meter: b"meters/" + junk + meter.encode() + b"/status", st.binary(max_size=4), METER_IDS),
    st.sampled_from([ROUTE.encode(), b"meters/A/reading", b"meters/A/status", b"", b"#", b"+", b"meters/\xff/reading"]),
)


class Recorder(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def logged_errors(name: str) -> Iterator[list[logging.LogRecord]]:
    """ERROR records logged under the logger ``name`` while the block runs."""
    recorder = Recorder()
    logger = logging.getLogger(name)
    logger.addHandler(recorder)
    try:
        yield recorder.records
    finally:
        logger.removeHandler(recorder)


@settings(FUZZ, max_examples=400)
@given(topic=TOPIC_BYTES, payload=st.one_of(PAYLOADS, VALID_MESSAGES.map(lambda message: message[1])))
@example(topic=b"meters/\xff\xfe/reading", payload=b"{}")
@example(topic=b"meters/\xed\xa0\x80/reading", payload=b"online")  # an encoded surrogate is not UTF-8
@example(topic=ROUTE.encode(), payload=b"\xff" * 70_000)
def test_on_message_never_raises(topic: bytes, payload: bytes) -> None:
    """Any topic bytes, any payload: the handler returns, nothing is logged as an error, ingest counts it once."""
    assume(len(topic) <= MAX_STRING)  # a PUBLISH cannot carry a longer topic
    routed: list[bytes] = []

    def on_route(data: bytes) -> None:
        routed.append(data)
        data.decode("ascii")  # a handler that fails on some payloads: the subscriber must contain that too

    subscriber = Subscriber(BrokerAddress("127.0.0.1", 1883), fresh_ingest())  # never started: no network
    subscriber.add_route(ROUTE, on_route)
    before = tally(subscriber.ingest)
    with logged_errors("bridge") as errors:
        acks = deliver(subscriber, topic, payload, qos=1, mid=77)
    assert acks == puback_packets([77])  # whatever it was, it was taken: acknowledged
    what = change(before, tally(subscriber.ingest))
    assert what != "internal"
    try:
        text = topic.decode("utf-8")
    except UnicodeDecodeError:
        assert what == "bad_topic"
        assert errors == []
        return
    if text == ROUTE:  # routed: not ingested; only a failure of the route's own handler may be logged
        assert routed == [payload]
        assert what == "none"
        assert len(errors) == (0 if payload.isascii() else 1)
        return
    assert routed == []
    assert errors == []  # neither an internal error in ingest nor the subscriber's last line of defence
    mirror = fresh_ingest()  # the seam adds nothing: the same message straight into Ingest does the same
    assert feed(mirror, text, payload)[1] == what
