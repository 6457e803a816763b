"""Home Assistant MQTT discovery payloads (pure): one device-based discovery message per meter.

Device-based discovery (Home Assistant 2024.11 and later): topic ``<prefix>/device/<meter_id>/config``, published
retained, a JSON object with the device (``dev``), the origin (``o``) and the components (``cmps``). Home Assistant
(2025.4) passes on to every component only these root options: the availability options, ``state_topic`` and
``command_topic``; it accepts ``qos`` at the root but does not pass it on, so each component carries its own ``qos``.

Each meter is one device with six sensors, all read from the meter's aggregate topic of one interval,
``meters/<id>/agg/<interval>s`` (never the raw 1 Hz readings):

- AC, Geyser and Overall power: the mean over the window in kW (device class ``power``, state class ``measurement``);
- AC, Geyser and Overall energy: the meter's energy registers in kWh at the end of the window (device class
  ``energy``, state class ``total_increasing``: what the Energy dashboard accepts).

A value the window does not have is JSON ``null``; the templates render it as ``None``, which Home Assistant's MQTT
sensor shows as unknown. Availability needs both the meter and the bridge that computes its aggregates
(``availability_mode: all``): the meter's retained ``meters/<id>/status`` and the bridge's retained
``bridges/<name>/status`` (``config.topics.bridge_status_topic``), each ``online``/``offline``. Without the second, a
dead bridge would leave the last aggregates on show as if current.
Unique ids depend only on the meter id and the sensor, so they stay stable across restarts and intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from config.topics import AGGREGATE_QOS, aggregate_topic, status_topic, valid_meter_id
from config.wire import OFFLINE, ONLINE

ORIGIN_NAME: Final = "smart-meter-fleet"
MANUFACTURER: Final = "smart-meter-fleet"
MODEL: Final = "Simulated smart meter"
HA_ONLINE: Final = b"online"  # Home Assistant's birth message on <prefix>/status
AVAILABILITY_MODE: Final = "all"  # available only while every availability topic says online
DISPLAY_PRECISION: Final = 3  # kW and kWh to 3 decimals (W and Wh)


@dataclass(frozen=True, slots=True)
class Origin:
    """Who publishes the discovery messages (Home Assistant logs it and links the support URL)."""

    name: str
    sw_version: str
    support_url: str | None = None


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One sensor of a meter device: which field of the aggregate document it shows, and how."""

    key: str  # component id inside the device, also the end of the unique id
    name: str
    device_class: str
    state_class: str
    unit: str
    field: str  # key of the aggregate document


SENSORS: Final = (
    SensorSpec("ac_power", "AC power", "power", "measurement", "kW", "AC"),
    SensorSpec("geyser_power", "Geyser power", "power", "measurement", "kW", "Geyser"),
    SensorSpec("overall_power", "Overall power", "power", "measurement", "kW", "Overall"),
    SensorSpec("ac_energy", "AC energy", "energy", "total_increasing", "kWh", "ac_kwh"),
    SensorSpec("geyser_energy", "Geyser energy", "energy", "total_increasing", "kWh", "geyser_kwh"),
    SensorSpec("overall_energy", "Overall energy", "energy", "total_increasing", "kWh", "overall_kwh"),
)


def ha_status_topic(prefix: str) -> str:
    """Where Home Assistant announces itself (``online`` when it starts: time to publish discovery again)."""
    return f"{prefix}/status"


def config_topic(prefix: str, meter: str) -> str:
    """The device discovery topic of a meter."""
    return f"{prefix}/device/{meter}/config"


def device_identifier(meter: str) -> str:
    """The meter's identifier in Home Assistant's device registry."""
    return f"{ORIGIN_NAME}_{meter}"


def unique_id(meter: str, sensor: SensorSpec) -> str:
    """Stable unique id of one sensor of one meter."""
    return f"{ORIGIN_NAME}_{meter}_{sensor.key}"


def _component(meter: str, sensor: SensorSpec) -> dict[str, object]:
    return {
        "p": "sensor",
        "name": sensor.name,
        "unique_id": unique_id(meter, sensor),
        "device_class": sensor.device_class,
        "state_class": sensor.state_class,
        "unit_of_measurement": sensor.unit,
        "suggested_display_precision": DISPLAY_PRECISION,
        "value_template": f"{{{{ value_json.{sensor.field} }}}}",
        "qos": AGGREGATE_QOS,  # here, not at the root: Home Assistant does not pass the root's qos on
    }


def _origin(origin: Origin) -> dict[str, object]:
    block: dict[str, object] = {"name": origin.name, "sw_version": origin.sw_version}
    if origin.support_url:
        block["support_url"] = origin.support_url
    return block


def _availability(topic: str) -> dict[str, object]:
    return {"topic": topic, "payload_available": ONLINE, "payload_not_available": OFFLINE}


def device_config(
    meter: str, prefix: str, interval_s: int, origin: Origin, bridge_status: str
) -> tuple[str, dict[str, object]]:
    """Topic and payload of a meter's device discovery message, its sensors reading the ``interval_s`` aggregates and
    available while both the meter and the bridge (its availability topic ``bridge_status``) are online."""
    if not valid_meter_id(meter):
        raise ValueError(f"not a meter id: {meter!r}")
    if interval_s < 1:
        raise ValueError("interval_s must be >= 1")
    payload: dict[str, object] = {
        "dev": {
            "identifiers": [device_identifier(meter)],
            "name": f"Smart meter {meter}",
            "manufacturer": MANUFACTURER,
            "model": MODEL,
            "sw_version": origin.sw_version,
        },
        "o": _origin(origin),
        "cmps": {sensor.key: _component(meter, sensor) for sensor in SENSORS},
        "state_topic": aggregate_topic(meter, interval_s),
        "availability": [_availability(status_topic(meter)), _availability(bridge_status)],
        "availability_mode": AVAILABILITY_MODE,
    }
    return config_topic(prefix, meter), payload
