"""config.shard and a sharded bridge (``FLEET_SHARD``): stable ownership, subscriptions, what the API knows."""

from __future__ import annotations

import zlib

import pytest

from bridge.ingest.history import History
from bridge.ingest.messages import Ingest
from bridge.ingest.repair import REPAIR_AFTER_S, GapRepairer
from bridge.ingest.subscriber import FILTERS_PER_SUBSCRIBE, Subscriber
from bridge.republish.aggregates import Republisher
from bridge.services.baseline import Baselines
from config.errors import ConfigError
from config.settings import KNOWN_KEYS, BrokerAddress, load_settings
from config.shard import MAX_SHARDS, Shard, parse_shard, shard_of
from config.topics import BATCH_SUBSCRIPTION, READING_SUBSCRIPTION, STATUS_SUBSCRIPTION, probe_topic
from config.wire import Reading, encode_reading
from simulator.meters.fleet import fleet_specs
from tests.support.bridgeapp import memory_app, state
from tests.support.subscriber import Wire
from tests.support.subscriber import deliver as deliver_message

T0 = 1_704_067_200


def test_ownership_is_crc32_of_the_id_modulo_the_count() -> None:
    # Pinned: every instance, on any machine or Python version, must agree on who owns a meter.
    assert zlib.crc32(b"A-0001") == 374_323_239
    assert [shard_of(m, 2) for m in ("A", "B", "C", "D", "A-0001", "C-0001")] == [1, 1, 1, 0, 1, 0]
    assert shard_of("anything", 1) == 0


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shards_split_a_fleet_without_overlap_or_gap(count: int) -> None:
    ids = [spec.meter_id for spec in fleet_specs(("A", "B", "C"), 3000)]
    parts = [Shard(k, count).owned(ids) for k in range(count)]
    assert sorted(m for part in parts for m in part) == sorted(ids)
    assert all(abs(len(part) - len(ids) / count) < 0.1 * len(ids) / count + 10 for part in parts)  # about even


@pytest.mark.parametrize(
    ("text", "shard"), [("0/1", Shard(0, 1)), (" 1/2 ", Shard(1, 2)), ("1023/1024", Shard(1023, 1024))]
)
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == text.strip()


@pytest.mark.parametrize("text", ["", "1", "2/2", "3/2", "0/0", "-1/2", "1/-2", "a/b", "0/1025", "0 / 2", "1/2/3"])
def test_bad_shard_is_a_config_error_naming_the_key(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_shard(text)
    assert info.value.key == "FLEET_SHARD"


def test_shard_validates_itself() -> None:
    with pytest.raises(ValueError, match="index"):
        Shard(2, 2)
    with pytest.raises(ValueError, match="count"):
        Shard(0, MAX_SHARDS + 1)


def test_setting_default_owns_everything() -> None:
    assert "FLEET_SHARD" in KNOWN_KEYS
    settings = load_settings({"FLEET_HOUSEHOLDS": "A,B,C,D"})
    assert settings.shard is None
    assert settings.owned_households() == ("A", "B", "C", "D")
    assert settings.owns("never-configured")


def test_setting_shard_owns_its_part() -> None:
    settings = load_settings({"FLEET_HOUSEHOLDS": "A,B,C,D", "FLEET_SHARD": "0/2"})
    assert settings.shard == Shard(0, 2)
    assert settings.owned_households() == ("D",)
    assert (settings.owns("D"), settings.owns("A")) == (True, False)
    with pytest.raises(ConfigError, match="FLEET_SHARD"):
        load_settings({"FLEET_SHARD": "2/2"})


def sharded(owned: list[str]) -> Subscriber:
    return Subscriber(BrokerAddress("127.0.0.1", 1883, "u", "p"), Ingest(History(3600)), "b-0", owned)


def deliver(subscriber: Subscriber, meter: str, ts: int) -> None:
    payload = encode_reading(Reading(meter, ts - T0, ts, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0))
    deliver_message(subscriber, f"meters/{meter}/reading".encode(), payload)


def test_a_sharded_subscriber_subscribes_per_owned_meter_and_drops_the_wildcards() -> None:
    subscriber = sharded(["D", "A-0001"])
    subscriber.add_route("homeassistant/status", lambda payload: None)
    wire = Wire(subscriber)
    subscriber._on_connack(0, False)
    assert [(w.kind, w.topics) for w in wire.packets() if w.kind != "publish"] == [
        ("unsubscribe", [(READING_SUBSCRIPTION, 0), (BATCH_SUBSCRIPTION, 0), (STATUS_SUBSCRIPTION, 0)]),  # earlier
        ("subscribe", [(probe_topic("b-0"), 1), ("homeassistant/status", 1)]),  # its liveness probe, its routes
        ("subscribe", [("meters/D/+", 1), ("meters/A-0001/+", 1)]),
    ]


def test_a_large_shard_subscribes_in_bounded_packets() -> None:
    owned = [f"m{i}" for i in range(2 * FILTERS_PER_SUBSCRIBE + 1)]
    subscriber = sharded(owned)
    wire = Wire(subscriber)
    subscriber._on_connack(0, False)
    sizes = [len(w.topics) for w in wire.packets() if w.kind == "subscribe"]
    assert sizes == [1, FILTERS_PER_SUBSCRIBE, FILTERS_PER_SUBSCRIBE, 1]  # the probe, then the meters


def test_a_sharded_subscriber_drops_meters_it_does_not_own() -> None:
    subscriber = sharded(["D"])
    deliver(subscriber, "D", T0)
    deliver(subscriber, "A", T0)  # a subscription left over from an earlier session that owned A
    assert subscriber.ingest.history.meters() == ["D"]
    assert subscriber.foreign == 1
    assert subscriber.ingest.counters() == {"accepted": 1, "duplicates": 0, "rejected": {}}


def test_a_sharded_app_knows_only_its_households() -> None:
    app = memory_app(load_settings({"FLEET_HOUSEHOLDS": "A,B,C,D", "FLEET_SHARD": "0/2"}))
    state(app).history.set_status("A", "online")  # reloaded from an older shard's data, say: still not served
    client = app.test_client()
    assert list(client.get("/api/meters").get_json()["meters"]) == ["D"]
    response = client.post("/stream_setup", json={"household": "A", "interval": 5})
    assert (response.status_code, response.get_json()) == (400, {"error": "Unrecognized house."})
    assert client.post("/stream_setup", json={"household": "d", "interval": 5}).status_code == 200


def test_a_sharded_republisher_announces_only_its_households() -> None:
    settings = load_settings({"FLEET_HOUSEHOLDS": "A,B,C,D", "FLEET_SHARD": "1/2"})
    history = History(3600)
    topics: list[str] = []

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        topics.append(topic)
        return True

    Republisher(history, Baselines(history, settings.zone(), settings.grace_s), settings, publish).step()
    assert topics == [f"homeassistant/device/{m}/config" for m in ("A", "B", "C")]


def test_healthz_of_a_shard_lists_only_its_meters() -> None:
    app = memory_app(load_settings({"FLEET_HOUSEHOLDS": "A,D", "FLEET_SHARD": "0/2"}))
    for meter in ("A", "D"):  # A: reloaded from the data of an older shard, say
        state(app).history.set_status(meter, "online")
    assert list(app.test_client().get("/healthz").get_json()["meters"]) == ["D"]


def test_a_shard_asks_only_its_own_meters_for_replays() -> None:
    history = History(3600)
    for meter in ("A", "D"):
        for seq in (0, 3):  # seqs 1-2 missing
            assert history.add(Reading(meter, seq, T0 + seq, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0))
    topics: list[str] = []
    now = [0.0]

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        topics.append(topic)
        return True

    repairer = GapRepairer(history, publish, lambda: now[0], owns=Shard(0, 2).owns)
    repairer.step()
    now[0] += REPAIR_AFTER_S
    assert repairer.step() == 1
    assert topics == ["meters/D/cmd/replay"]


def test_a_shard_republishes_only_its_own_meters() -> None:
    settings = load_settings({"FLEET_HOUSEHOLDS": "A,D", "FLEET_SHARD": "0/2", "FLEET_HA_DISCOVERY": "false"})
    history = History(7200)
    topics: list[str] = []

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        topics.append(topic)
        return True

    republisher = Republisher(history, Baselines(history, settings.zone(), settings.grace_s), settings, publish)
    republisher.step()
    for meter in ("A", "D"):
        for ts in range(T0, T0 + 125):
            history.add(Reading(meter, ts - T0, ts, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0))
    republisher.step()
    assert set(topics) == {"meters/D/agg/60s"}  # A heard too, never published
