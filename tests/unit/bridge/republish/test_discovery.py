"""bridge.republish.discovery against Home Assistant's documented rules for device-based MQTT discovery (not a
snapshot).
The rules below are written down as data, each with where it comes from:

- HA docs, MQTT integration, "Discovery topic" and "Device discovery payload" (home-assistant.io
  source/_integrations/mqtt.markdown, device-based discovery since 2024.11); HA core (2025.4)
  homeassistant/components/mqtt/discovery.py (TOPIC_MATCHER, abbreviation replacement, ``_parse_device_payload``
  validating with DEVICE_DISCOVERY_SCHEMA, ``_merge_common_device_options`` copying SHARED_OPTIONS into each
  component unless it has its own) and schemas.py (SHARED_OPTIONS: the availability options, ``command_topic`` and
  ``state_topic`` only, so a root ``qos`` reaches no component; DEVICE_DISCOVERY_SCHEMA = MQTT_AVAILABILITY_SCHEMA
  extended with device, components, origin (required), state_topic, command_topic, qos, encoding, extra keys
  refused; MQTT_AVAILABILITY_SCHEMA: availability_topic, availability_template, payload_available,
  payload_not_available, availability_mode (all, any, latest) and availability, a list of {topic, payload_available,
  payload_not_available, value_template}, exclusive with availability_topic; MQTT_ENTITY_DEVICE_INFO_SCHEMA: a device
  needs identifiers or connections; MQTT_ORIGIN_INFO_SCHEMA: origin needs a name).
- HA core (2025.4) homeassistant/components/mqtt/sensor.py (``_PLATFORM_SCHEMA_BASE``: MQTT_RO_SCHEMA of config.py,
  i.e. qos, encoding, state_topic, value_template, plus the sensor's own options and MQTT_ENTITY_COMMON_SCHEMA of
  schemas.py; its DISCOVERY_SCHEMA *removes* unknown keys silently, which is why a misspelt key must be caught here:
  Home Assistant would not say a word).
- HA docs "Supported abbreviations in MQTT discovery messages" / core mqtt/abbreviations.py (ABBREVIATIONS,
  DEVICE_ABBREVIATIONS, ORIGIN_ABBREVIATIONS): the subset a sensor device can use.
- HA core homeassistant/components/sensor/const.py: DEVICE_CLASS_UNITS and DEVICE_CLASS_STATE_CLASSES for power and
  energy, SensorStateClass values; HA developer docs "Energy dashboard": an energy sensor needs device class energy,
  state class total or total_increasing and an energy unit.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final
from urllib.parse import urlsplit

import jinja2
import numpy as np
import pytest

from bridge.republish.aggregates import aggregate_document, default_origin, package_version
from bridge.republish.discovery import SENSORS, Origin, config_topic, device_config, ha_status_topic
from bridge.windows.aggregate import make_window
from config.settings import load_settings
from config.topics import WHOLE_FLEET, aggregate_topic, bridge_status_topic, reading_topic, status_topic

ORIGIN = Origin("smart-meter-fleet", "1.2.3", "http://127.0.0.1:5000/")
BRIDGE_STATUS = bridge_status_topic(WHOLE_FLEET)

# --- The rules, as data -------------------------------------------------------------------------------------------

# <discovery_prefix>/<component>/[<node_id>/]<object_id>/config; device-based discovery uses the component "device".
TOPIC_RE: Final = re.compile(
    r"(?P<prefix>.+)/(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config"
)

# Abbreviations HA expands (subset relevant to sensors), per scope.
ABBREVIATIONS: Final = {  # root and component scope
    "p": "platform",
    "dev": "device",
    "o": "origin",
    "cmps": "components",
    "uniq_id": "unique_id",
    "obj_id": "object_id",
    "dev_cla": "device_class",
    "stat_cla": "state_class",
    "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template",
    "stat_t": "state_topic",
    "sug_dsp_prc": "suggested_display_precision",
    "exp_aft": "expire_after",
    "frc_upd": "force_update",
    "ic": "icon",
    "en": "enabled_by_default",
    "ent_cat": "entity_category",
    "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "e": "encoding",
    "avty": "availability",
    "avty_mode": "availability_mode",
    "avty_t": "availability_topic",
    "avty_tpl": "availability_template",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "t": "topic",
}
DEVICE_ABBREVIATIONS: Final = {
    "cns": "connections",
    "cu": "configuration_url",
    "hw": "hw_version",
    "ids": "identifiers",
    "mdl": "model",
    "mdl_id": "model_id",
    "mf": "manufacturer",
    "sa": "suggested_area",
    "sn": "serial_number",
    "sw": "sw_version",
}
ORIGIN_ABBREVIATIONS: Final = {"sw": "sw_version", "url": "support_url"}

AVAILABILITY_OPTIONS: Final = {
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "payload_available",
    "payload_not_available",
}
AVAILABILITY_MODES: Final = {"all", "any", "latest"}
# One entry of the ``availability`` list (schemas.py MQTT_AVAILABILITY_LIST_SCHEMA): topic required.
AVAILABILITY_ENTRY_KEYS: Final = {"topic", "payload_available", "payload_not_available", "value_template"}
# Device discovery: required at the root, and what else the root may carry (DEVICE_DISCOVERY_SCHEMA).
DEVICE_DISCOVERY_REQUIRED: Final = {"device", "origin", "components"}
DEVICE_DISCOVERY_ALLOWED: Final = DEVICE_DISCOVERY_REQUIRED | {"state_topic", "command_topic", "qos", "encoding"}
# What HA 2025.4 copies from the root into each component (schemas.py SHARED_OPTIONS): not qos, not encoding.
SHARED_OPTIONS: Final = AVAILABILITY_OPTIONS | {"state_topic", "command_topic"}
DEVICE_KEYS: Final = {
    "identifiers",
    "connections",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "hw_version",
    "serial_number",
    "sw_version",
    "via_device",
    "suggested_area",
    "configuration_url",
}
ORIGIN_REQUIRED: Final = {"name"}
ORIGIN_KEYS: Final = {"name", "sw_version", "support_url"}
# An MQTT sensor's options (HA docs sensor.mqtt), after shared options are merged in.
SENSOR_KEYS: Final = AVAILABILITY_OPTIONS | {
    "platform",
    "name",
    "unique_id",
    "object_id",
    "device_class",
    "state_class",
    "unit_of_measurement",
    "value_template",
    "suggested_display_precision",
    "state_topic",
    "qos",
    "encoding",
    "expire_after",
    "force_update",
    "icon",
    "enabled_by_default",
    "entity_category",
    "json_attributes_topic",
    "json_attributes_template",
    "last_reset_value_template",
    "device",
    "origin",
}
SENSOR_REQUIRED: Final = {"platform", "unique_id", "state_topic"}  # unique_id: required in device discovery

STATE_CLASSES: Final = {"measurement", "total", "total_increasing"}
# DEVICE_CLASS_UNITS today; W and kW (power) and kWh (energy) have been accepted since long before 2024.11.
DEVICE_CLASS_UNITS: Final = {
    "power": {"mW", "W", "kW", "MW", "GW", "TW"},
    "energy": {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal", "Gcal"},
}
UNITS_SINCE_2024_11: Final = {"power": {"W", "kW"}, "energy": {"Wh", "kWh", "MWh", "MJ", "GJ"}}
DEVICE_CLASS_STATE_CLASSES: Final = {"power": {"measurement"}, "energy": {"total", "total_increasing"}}


# --- How Home Assistant reads a payload ---------------------------------------------------------------------------


def expand(block: dict[str, Any], abbreviations: dict[str, str]) -> dict[str, Any]:
    """HA's abbreviation replacement: only documented abbreviations are expanded; a duplicate is a bug."""
    out: dict[str, Any] = {}
    for key, value in block.items():
        full = abbreviations.get(key, key)
        assert full not in out, f"{key!r} given twice (abbreviated and in full)"
        out[full] = value
    return out


def _expand_availability(block: dict[str, Any]) -> None:
    if isinstance(block.get("availability"), list):
        block["availability"] = [expand(entry, ABBREVIATIONS) for entry in block["availability"]]


def read_like_home_assistant(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The expanded root, and each component as HA sets it up (shared options merged in unless overridden)."""
    root = expand(payload, ABBREVIATIONS)
    root["device"] = expand(root["device"], DEVICE_ABBREVIATIONS)
    root["origin"] = expand(root["origin"], ORIGIN_ABBREVIATIONS)
    _expand_availability(root)
    components = {}
    for component_id, raw in root["components"].items():
        component = expand(raw, ABBREVIATIONS)
        _expand_availability(component)
        for option in SHARED_OPTIONS:
            if option in root and option not in component:
                component[option] = root[option]
        component["device"], component["origin"] = root["device"], root["origin"]
        components[component_id] = component
    return root, components


@pytest.fixture(params=["A", "B-0001", "meter_7"])
def meter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def discovered(meter: str) -> tuple[str, dict[str, Any]]:
    topic, payload = device_config(meter, "homeassistant", 60, ORIGIN, BRIDGE_STATUS)
    return topic, json.loads(json.dumps(payload))  # exactly what goes over the wire


# --- The tests ----------------------------------------------------------------------------------------------------


def test_topic_is_a_device_discovery_topic(meter: str, discovered: tuple[str, dict[str, Any]]) -> None:
    topic, _ = discovered
    match = TOPIC_RE.fullmatch(topic)
    assert match is not None
    assert match["prefix"] == "homeassistant"
    assert match["component"] == "device"
    assert match["node_id"] is None
    assert match["object_id"] == meter
    assert config_topic("ha", meter) == f"ha/device/{meter}/config"
    assert ha_status_topic("homeassistant") == "homeassistant/status"


def _check_availability(block: dict[str, Any], where: str) -> None:
    assert not {"availability", "availability_topic"} <= set(block), f"{where}: availability and _topic exclude"
    if "availability_mode" in block:
        assert block["availability_mode"] in AVAILABILITY_MODES, where
    for entry in block.get("availability", []):
        assert "topic" in entry, where
        assert set(entry) <= AVAILABILITY_ENTRY_KEYS, f"{where}: {set(entry) - AVAILABILITY_ENTRY_KEYS}"


def check_keys(payload: dict[str, Any]) -> None:
    """Every key of the device payload, of its device, origin and availability entries, and of each component (as
    Home Assistant 2025.4 sets it up), abbreviated or not, is in the schema Home Assistant validates it with."""
    root, components = read_like_home_assistant(payload)
    assert set(root) >= DEVICE_DISCOVERY_REQUIRED
    assert set(root) <= DEVICE_DISCOVERY_ALLOWED | AVAILABILITY_OPTIONS, set(root) - DEVICE_DISCOVERY_ALLOWED
    _check_availability(root, "root")
    assert set(root["device"]) <= DEVICE_KEYS
    assert ORIGIN_REQUIRED <= set(root["origin"]) <= ORIGIN_KEYS
    for component_id, component in components.items():
        assert re.fullmatch(r"[a-zA-Z0-9_-]+", component_id)
        assert SENSOR_REQUIRED <= set(component) <= SENSOR_KEYS, (component_id, set(component) - SENSOR_KEYS)
        _check_availability(component, component_id)


def test_every_key_is_one_home_assistant_accepts(discovered: tuple[str, dict[str, Any]]) -> None:
    check_keys(discovered[1])


@pytest.mark.parametrize(
    "bad",
    [
        {"qos_level": 1},  # a misspelt root key: HA refuses the whole device
        {"availability_topic": "meters/A/status"},  # with ``availability``: exclusive
        {"availability_mode": "both"},
        {"availability": [{"topic": "meters/A/status", "payload_on": "online"}]},
    ],
)
def test_the_key_check_catches_what_home_assistant_refuses(bad: dict[str, Any]) -> None:
    """The check above is not vacuous: payloads Home Assistant would refuse fail it."""
    _, payload = device_config("A", "homeassistant", 60, ORIGIN, BRIDGE_STATUS)
    with pytest.raises(AssertionError):
        check_keys({**json.loads(json.dumps(payload)), **bad})


def test_the_key_check_catches_a_component_key_home_assistant_would_drop() -> None:
    _, payload = device_config("A", "homeassistant", 60, ORIGIN, BRIDGE_STATUS)
    payload = json.loads(json.dumps(payload))
    payload["cmps"]["ac_power"]["unit"] = "kW"  # sensor.py's DISCOVERY_SCHEMA would remove it without a word
    with pytest.raises(AssertionError):
        check_keys(payload)


def test_qos_is_in_each_component_not_left_to_the_root(discovered: tuple[str, dict[str, Any]]) -> None:
    """HA 2025.4 does not pass a root ``qos`` on: without one of its own a sensor subscribes at QoS 0."""
    _, payload = discovered
    assert "qos" not in payload
    assert all(component["qos"] == 1 for component in payload["cmps"].values())


def test_device_and_origin(meter: str, discovered: tuple[str, dict[str, Any]]) -> None:
    _, payload = discovered
    root, _ = read_like_home_assistant(payload)
    device, origin = root["device"], root["origin"]
    assert device.get("identifiers") or device.get("connections")
    assert all(isinstance(i, str) and i for i in device["identifiers"])
    assert all(isinstance(device[key], str) and device[key] for key in ("name", "manufacturer", "model"))
    assert meter in device["name"]
    assert origin == {"name": "smart-meter-fleet", "sw_version": "1.2.3", "support_url": "http://127.0.0.1:5000/"}
    assert urlsplit(origin["support_url"]).scheme in ("http", "https")


@pytest.mark.parametrize("device_class", ["power", "energy"])
def test_device_class_unit_and_state_class_pairs(discovered: tuple[str, dict[str, Any]], device_class: str) -> None:
    _, payload = discovered
    _, components = read_like_home_assistant(payload)
    sensors = [c for c in components.values() if c["device_class"] == device_class]
    assert len(sensors) == 3  # AC, Geyser, Overall
    for sensor in sensors:
        assert sensor["platform"] == "sensor"
        assert sensor["state_class"] in STATE_CLASSES
        assert sensor["state_class"] in DEVICE_CLASS_STATE_CLASSES[device_class]
        assert sensor["unit_of_measurement"] in DEVICE_CLASS_UNITS[device_class]
        assert sensor["unit_of_measurement"] in UNITS_SINCE_2024_11[device_class]


def test_energy_sensors_qualify_for_the_energy_dashboard(discovered: tuple[str, dict[str, Any]]) -> None:
    _, payload = discovered
    _, components = read_like_home_assistant(payload)
    energy = {c["name"] for c in components.values() if c["device_class"] == "energy"}
    assert energy == {"AC energy", "Geyser energy", "Overall energy"}
    for component in components.values():
        if component["device_class"] == "energy":
            assert component["state_class"] in ("total", "total_increasing")
            assert component["unit_of_measurement"] == "kWh"


def test_sensors_read_the_aggregate_topic_never_the_raw_one(meter: str, discovered: tuple[str, dict[str, Any]]) -> None:
    _, payload = discovered
    _, components = read_like_home_assistant(payload)
    for component in components.values():
        assert component["state_topic"] == aggregate_topic(meter, 60) == f"meters/{meter}/agg/60s"
        assert component["state_topic"] != reading_topic(meter)
        assert component["qos"] == 1


def test_availability_needs_both_the_meter_and_the_bridge(meter: str, discovered: tuple[str, dict[str, Any]]) -> None:
    _, payload = discovered
    _, components = read_like_home_assistant(payload)
    for component in components.values():
        assert component["availability_mode"] == "all"
        assert component["availability"] == [
            {"topic": status_topic(meter), "payload_available": "online", "payload_not_available": "offline"},
            {"topic": BRIDGE_STATUS, "payload_available": "online", "payload_not_available": "offline"},
        ]
        assert "availability_topic" not in component
    assert BRIDGE_STATUS == "bridges/fleet/status"


def test_unique_ids_are_stable_and_distinct() -> None:
    ids: dict[str, list[str]] = {}
    for meter in ("A", "B", "C"):
        first = read_like_home_assistant(device_config(meter, "homeassistant", 60, ORIGIN, BRIDGE_STATUS)[1])[1]
        again = read_like_home_assistant(
            device_config(meter, "other", 300, Origin("x", "9"), "bridges/shard-1-of-2/status")[1]
        )[1]
        ids[meter] = [c["unique_id"] for c in first.values()]
        assert ids[meter] == [c["unique_id"] for c in again.values()]  # not tied to interval, prefix or version
    every = [uid for meter_ids in ids.values() for uid in meter_ids]
    assert len(every) == len(set(every)) == 18
    devices = [device_config(m, "homeassistant", 60, ORIGIN, BRIDGE_STATUS)[1]["dev"]["identifiers"][0] for m in "ABC"]
    assert len(set(devices)) == 3


def test_templates_render_the_aggregate_fields() -> None:
    """Each template, rendered as HA does (Jinja with value_json), gives the number from a real aggregate message."""
    samples = [[1.5, 3.0, 5.25]] * 59 + [[1.5, None, 5.75]]
    window = make_window("A", 60, 1_704_067_200, 1_704_067_260, np.array(samples, dtype=float), 60)
    status = {"AC": "Green", "Geyser": "Green", "Overall": "Green"}
    doc = aggregate_document(window, status, "Green", (12.3456, 4.5, 40.1234))
    value_json = json.loads(json.dumps(doc))
    _, payload = device_config("A", "homeassistant", 60, ORIGIN, BRIDGE_STATUS)
    _, components = read_like_home_assistant(json.loads(json.dumps(payload)))
    env = jinja2.Environment(autoescape=False)
    rendered = {
        key: env.from_string(component["value_template"]).render(value_json=value_json)
        for key, component in components.items()
    }
    assert rendered == {
        "ac_power": "1.5",
        "geyser_power": "3.0",
        "overall_power": "5.258",
        "ac_energy": "12.3456",
        "geyser_energy": "4.5",
        "overall_energy": "40.1234",
    }
    assert {spec.field for spec in SENSORS} <= set(value_json)


def test_a_missing_value_renders_none() -> None:
    """JSON null renders as ``None``, which Home Assistant's MQTT sensor shows as unknown (not as an error)."""
    template = device_config("A", "homeassistant", 60, ORIGIN, BRIDGE_STATUS)[1]["cmps"]["ac_power"]["value_template"]
    assert jinja2.Environment(autoescape=False).from_string(template).render(value_json={"AC": None}) == "None"


@pytest.mark.parametrize("bad", ["", "A/B", "A+", "#", "x" * 65])
def test_refuses_a_bad_meter_id(bad: str) -> None:
    with pytest.raises(ValueError, match="meter id"):
        device_config(bad, "homeassistant", 60, ORIGIN, BRIDGE_STATUS)


def test_default_origin_names_this_package_and_the_bridge() -> None:
    settings = load_settings({"FLEET_HTTP_HOST": "127.0.0.1", "FLEET_HTTP_PORT": "5001"})
    origin = default_origin(settings)
    assert origin.name == "smart-meter-fleet"
    assert origin.sw_version == package_version() != "0+unknown"
    assert origin.support_url == "http://127.0.0.1:5001/"
    wildcard = default_origin(load_settings({"FLEET_HTTP_HOST": "0.0.0.0"}))
    assert wildcard.support_url is not None
    assert "0.0.0.0" not in wildcard.support_url
