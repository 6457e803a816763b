"""The compose wiring, checked without Docker: services, settings, the Dockerfile, and each service's command for real.

Docker is not needed: each meter and bridge command of docker-compose.yml runs with this interpreter against Mosquitto
started from the project's own config/mosquitto/mosquitto.conf, moved to a free loopback port (the compose host
``broker`` becomes 127.0.0.1, port 1883 that free port, and the bridge's port 5000 another one). Authentication is on
as in compose: the mqtt-auth service's command writes the secret and Mosquitto's files first, into a temporary
directory that stands for the mqtt-auth volume wherever a service mounts it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import paho.mqtt.publish as publish
import pytest
import yaml

from broker.auth_files import MOSQUITTO_DYNSEC
from broker.limits import MAX_PACKET_BYTES
from config.errors import ConfigError
from config.households import household
from config.settings import KNOWN_KEYS, PREFIX, load_settings, parse_broker_url
from config.topics import READING_SUBSCRIPTION, reading_topic
from config.wire import decode_reading
from tests.conftest import require_mosquitto
from tests.support.mqtt import collecting
from tests.support.paths import ROOT
from tests.support.procs import (
    LOOPBACK,
    Proc,
    clean_env,
    dynsec_plugin,
    free_port,
    login,
    mosquitto_binary,
    start,
)

COMPOSE_FILE: Final = ROOT / "docker-compose.yml"
DOCKERFILE: Final = ROOT / "Dockerfile"
DOCKERIGNORE: Final = ROOT / ".dockerignore"
MOSQUITTO_CONF: Final = ROOT / "config" / "mosquitto" / "mosquitto.conf"

EXPECTED_SERVICES: Final = {"mqtt-auth", "broker", "meter-a", "meter-b", "meter-c", "bridge"}
BROKER_SERVICE: Final = "broker"
AUTH_SERVICE: Final = "mqtt-auth"
AUTH_VOLUME: Final = "mqtt-auth"
MOSQUITTO_UID: Final = "1883"  # the mosquitto user of eclipse-mosquitto images
MOSQUITTO_IMAGE: Final = "eclipse-mosquitto:2.0.11"  # Debian's mosquitto, which the tests and the benchmarks run
FLEET_USER: Final = "fleet"  # the image's user (Dockerfile)
COMPOSE_SCHEMA: Final = "vendor.compose-spec"  # the Compose specification's JSON schema, as check-jsonschema ships it
BRIDGE_CONTAINER_PORT: Final = 5000
WAIT_S: Final = 15.0

# ${NAME}, ${NAME:-default}, ${NAME-default}, $NAME and $$ (a literal $), as docker compose interpolates them.
_INTERPOLATION_RE: Final = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<sep>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<invalid>))"
)


def interpolate(value: Any, host_env: Mapping[str, str]) -> Any:
    """``value`` with compose's variable substitution applied, as ``docker compose config`` would show it."""
    if isinstance(value, dict):
        return {key: interpolate(item, host_env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, host_env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        if name is None:
            raise ValueError(f"unsupported $ expression in {value!r} (write $$ for a literal $)")
        found = host_env.get(name)
        if found is not None and (found != "" or match["sep"] != ":-"):
            return found
        if match["sep"] is not None:
            return str(match["default"])
        raise ValueError(f"{name} is unset and has no default in {value!r}: compose would substitute ''")

    return _INTERPOLATION_RE.sub(substitute, value)


def _load_services() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    services = interpolate(document["services"], {})  # the defaults: no FLEET_* set on the host
    assert isinstance(services, dict)
    return services


SERVICES: Final = _load_services()
APP_SERVICES: Final = sorted(name for name in SERVICES if name not in (BROKER_SERVICE, AUTH_SERVICE))


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as strings (compose accepts a mapping or a list of KEY=VALUE)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        for entry in raw:
            assert "=" in entry, f"{entry!r} takes its value from the host; give it one in the compose file"
        raw = dict(entry.split("=", 1) for entry in raw)
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def mounts(service: Mapping[str, Any]) -> dict[str, tuple[str, bool]]:
    """Short-syntax volume mounts ``SOURCE:TARGET[:ro]`` as source -> (container path, read-only)."""
    found = {}
    for spec in service.get("volumes") or []:
        source, target, *mode = str(spec).split(":")
        found[source] = (target, bool(mode) and "ro" in mode[0].split(","))
    return found


def declared_volumes() -> set[str]:
    """The named volumes of the compose file's top-level ``volumes``."""
    return set(yaml.safe_load(COMPOSE_FILE.read_text()).get("volumes") or {})


def dockerfile_env() -> dict[str, str]:
    """``ENV KEY=VALUE ...`` of the Dockerfile (the ``KEY=VALUE`` form only)."""
    found = {}
    for keyword, rest in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword == "ENV":
            for word in shlex.split(rest):
                assert "=" in word, f"ENV {rest}: write KEY=VALUE"
                key, value = word.split("=", 1)
                found[key] = value
    return found


def data_dir_in(service: Mapping[str, Any]) -> str:
    """The service's FLEET_DATA_DIR in the container: its compose environment's, else the image's."""
    return environment(service).get("FLEET_DATA_DIR") or dockerfile_env()["FLEET_DATA_DIR"]


def dockerfile_owned_dirs(text: str) -> dict[str, str]:
    """Directories a ``RUN ... install -d -o USER ...`` of the Dockerfile creates, with their owner."""
    owned = {}
    for keyword, rest in dockerfile_instructions(text):
        if keyword != "RUN":
            continue
        for step in rest.split("&&"):
            words = shlex.split(step)
            if words[:2] != ["install", "-d"] or "-o" not in words:
                continue
            owner = option(words, "-o")
            skip = {index + 1 for index, word in enumerate(words) if word in ("-o", "-g", "-m")}
            for index, word in enumerate(words[2:], start=2):
                if index not in skip and not word.startswith("-"):
                    owned[word] = owner
    return owned


def auth_dir_in(service: Mapping[str, Any]) -> str:
    """Where ``service`` mounts the mqtt-auth volume."""
    assert AUTH_VOLUME in mounts(service), f"the {AUTH_VOLUME} volume is not mounted"
    return mounts(service)[AUTH_VOLUME][0]


def localize(value: str, service: Mapping[str, Any], auth_dir: Path) -> str:
    """``value`` with the service's mount point of the mqtt-auth volume replaced by the local ``auth_dir``."""
    target = auth_dir_in(service)
    assert value == target or value.startswith(f"{target}/"), f"{value} is not in the {AUTH_VOLUME} volume"
    return str(auth_dir) + value[len(target) :]


def option(argv: list[str], name: str) -> str:
    """The value after ``name`` in ``argv``."""
    assert name in argv, f"{name} missing from {argv}"
    return argv[argv.index(name) + 1]


def published(ports: list[Any]) -> dict[int, tuple[str, int]]:
    """Short-syntax port mappings ``[IP:]HOST_PORT:CONTAINER_PORT`` as container port -> (host IP, host port)."""
    mappings: dict[int, tuple[str, int]] = {}
    for spec in ports:
        parts = str(spec).split("/")[0].rsplit(":", 2)
        assert len(parts) == 3, f"port {spec!r}: give the host IP, never publish on every interface"
        host_ip, host_port, container_port = parts
        mappings[int(container_port)] = (host_ip, int(host_port))
    return mappings


def conf_options(text: str) -> dict[str, list[str]]:
    """Mosquitto config options: name -> the rest of each line that sets it."""
    options: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split(None, 1)
        if words and not words[0].startswith("#"):
            options.setdefault(words[0], []).append(words[1].strip() if len(words) > 1 else "")
    return options


def meter_households() -> dict[str, str]:
    """Meter service name -> the household its simulator command runs."""
    return {
        name: household(option(SERVICES[name]["command"], "--household")).id
        for name in APP_SERVICES
        if SERVICES[name]["command"][2] == "simulator"
    }


def dockerfile_instructions(text: str) -> list[list[str]]:
    """``[KEYWORD, arguments]`` per Dockerfile instruction, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        [words[0].upper(), words[1].strip()] for line in joined.splitlines() if len(words := line.split(None, 1)) == 2
    ]


def packages_with_main() -> set[str]:
    """This project's packages that run with ``python -m``."""
    return {name for name in top_level_packages() if (ROOT / name / "__main__.py").is_file()}


def top_level_packages() -> set[str]:
    """The top-level names setuptools finds packages under (``include = ["config*", ...]`` in pyproject.toml)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}


# --- Running the services' commands on loopback -----------------------------------------------------------------


def local_mosquitto_conf(text: str, port: int, data_dir: Path, auth_dir: Path) -> str:
    """The production config with its listener on ``LOOPBACK:port``, persistence in ``data_dir`` and the credential
    files in ``auth_dir``."""
    lines = []
    for line in text.splitlines():
        name = line.split(None, 1)[0] if line.strip() else ""
        if name == "listener":
            line = f"listener {port} {LOOPBACK}"
        elif name == "persistence_location":
            line = f"persistence_location {data_dir}/"
        elif name == "plugin_opt_config_file":
            line = f"{name} {localize(line.split(None, 1)[1].strip(), SERVICES[BROKER_SERVICE], auth_dir)}"
        elif name == "plugin":
            line = f"plugin {dynsec_plugin()}"  # where this machine's Mosquitto has it
        elif name == "user":
            continue
        lines.append(line)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lines.append("user root")  # as root Mosquitto would drop to user mosquitto, which cannot write data_dir
    return "\n".join(lines) + "\n"


def auth_argv(command: list[str], auth_dir: Path) -> list[str]:
    """The mqtt-auth command run with this interpreter, writing into ``auth_dir``, files left to the running user
    (``--owner`` and ``--secret-owner`` name users of the images)."""
    assert command[:4] == ["python", "-m", "broker", "mosquitto-auth"], command
    argv = [sys.executable, *command[1:]]
    argv[argv.index("--out") + 1] = localize(option(argv, "--out"), SERVICES[AUTH_SERVICE], auth_dir)
    for name in ("--owner", "--secret-owner"):
        if name in argv:
            del argv[argv.index(name) : argv.index(name) + 2]
    return argv


def run_auth_service(auth_dir: Path) -> None:
    """Run the mqtt-auth service's command and environment on this machine: secret and Mosquitto files in
    ``auth_dir``."""
    service = SERVICES[AUTH_SERVICE]
    env = environment(service)
    env["FLEET_MQTT_SECRET"] = localize(env["FLEET_MQTT_SECRET"], service, auth_dir)
    result = subprocess.run(
        auth_argv(service["command"], auth_dir),
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert result.returncode == 0, f"{AUTH_SERVICE} failed: {result.stdout}{result.stderr}"


def start_project_mosquitto(work_dir: Path) -> Proc:
    """Mosquitto with config/mosquitto/mosquitto.conf (rewritten as above), listening, after the mqtt-auth service's
    command wrote its files into ``work_dir/auth``."""
    port = free_port()
    data_dir = work_dir / "mosquitto-data"
    data_dir.mkdir(parents=True)
    run_auth_service(work_dir / "auth")
    conf = work_dir / "mosquitto.conf"
    conf.write_text(local_mosquitto_conf(MOSQUITTO_CONF.read_text(), port, data_dir, work_dir / "auth"))
    proc = start("mosquitto", [mosquitto_binary(), "-c", str(conf)], work_dir / "logs", port=port)
    try:
        proc.wait_port(port, timeout=WAIT_S)
    except BaseException:
        proc.stop()
        raise
    return proc


def project_auth_dir(broker: Proc) -> Path:
    """The local stand-in for the mqtt-auth volume of a ``start_project_mosquitto`` broker (beside its logs)."""
    return broker.log_path.parent.parent / "auth"


def local_env(service: Mapping[str, Any], broker_port: int, auth_dir: Path, data_dir: Path) -> dict[str, str]:
    """The service's environment with the compose broker address replaced by ``LOOPBACK:broker_port``, the secret in
    ``auth_dir`` and the data directory (a volume in compose) at ``data_dir``."""
    env = environment(service)
    assert env["FLEET_DATA_DIR"] == data_dir_in(service)
    env["FLEET_DATA_DIR"] = str(data_dir)
    address = parse_broker_url(env["FLEET_BROKER"])
    assert address.host == BROKER_SERVICE, f"FLEET_BROKER {env['FLEET_BROKER']} is not the compose broker"
    assert address.username is None, "no credentials in the compose file: they derive from the secret"
    env["FLEET_BROKER"] = f"mqtt://{LOOPBACK}:{broker_port}"
    env["FLEET_MQTT_SECRET"] = localize(env["FLEET_MQTT_SECRET"], service, auth_dir)
    return clean_env(env)


def local_argv(command: list[str], http_port: int) -> list[str]:
    """The service command run with this interpreter, binding ``LOOPBACK:http_port`` instead of the container's."""
    assert command[0] == "python", command
    argv = [sys.executable, *command[1:]]
    for name, value in (("--host", LOOPBACK), ("--port", str(http_port))):
        if name in argv:
            argv[argv.index(name) + 1] = value
    assert "--broker" not in argv, "the broker address comes from FLEET_BROKER in the environment"
    return argv


def healthcheck_argv(service: Mapping[str, Any], replacements: Mapping[str, str]) -> list[str]:
    """A service's healthcheck command (``[CMD, ...]``, or ``[CMD-SHELL, line]`` as ``sh -c line``), with
    ``replacements`` applied to its words."""
    test = service["healthcheck"]["test"]
    assert isinstance(test, list), "healthcheck test must be a list: [CMD, ...] or [CMD-SHELL, line]"
    assert test[0] in ("CMD", "CMD-SHELL"), f"healthcheck must be [CMD, ...] or [CMD-SHELL, line], got {test[0]!r}"
    argv = list(test[1:]) if test[0] == "CMD" else ["sh", "-c", *test[1:]]
    for old, new in replacements.items():
        argv = [word.replace(old, new) for word in argv]
    return argv


def _wait_on(proc: Proc, timeout: float) -> None:
    """Wait up to ``timeout`` on the process itself: returns early if it exits."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=timeout)


def _get_healthz(port: int) -> tuple[int, dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def check_meter(proc: Proc, command: list[str], broker: Proc, http_port: int) -> None:
    """Readings of the meter's household arrive at the broker and decode."""
    meter_id = household(option(command, "--household")).id
    assert broker.port is not None
    deadline = time.monotonic() + WAIT_S
    msg = None
    with collecting(broker.port, [READING_SUBSCRIPTION], secret=project_auth_dir(broker) / "mqtt-secret") as collector:
        while msg is None and proc.alive() and time.monotonic() < deadline:
            # Short waits on the queue, so a meter that exits fails the test at once, not after WAIT_S.
            with contextlib.suppress(TimeoutError):
                msg = collector.wait_for(lambda m: m.topic == reading_topic(meter_id), timeout=0.5)
    if msg is None:
        pytest.fail(f"no reading of meter {meter_id} (exit code {proc.popen.poll()}):\n{proc.log()[-3000:]}")
    reading = decode_reading(msg.topic, msg.payload)
    assert reading.meter == meter_id


def check_bridge(proc: Proc, command: list[str], broker: Proc, http_port: int) -> None:
    """/healthz answers 200 JSON with MQTT connected, and so does the compose healthcheck."""
    proc.wait_port(http_port, timeout=WAIT_S)
    deadline = time.monotonic() + WAIT_S
    answer = None
    while time.monotonic() < deadline and proc.alive():
        answer = _get_healthz(http_port)
        if answer is not None and answer[0] == 200 and answer[1].get("mqtt") == "connected":
            break
        _wait_on(proc, 0.2)
    else:
        pytest.fail(f"/healthz never said mqtt connected within {WAIT_S} s (last {answer}):\n{proc.log()[-3000:]}")
    container_port = option(command, "--port")
    check = healthcheck_argv(SERVICES["bridge"], {f"{LOOPBACK}:{container_port}/": f"{LOOPBACK}:{http_port}/"})
    assert check[0] == "python", check
    assert any(f"{LOOPBACK}:{http_port}/healthz" in word for word in check), f"healthcheck misses /healthz: {check}"
    result = subprocess.run(
        [sys.executable, *check[1:]], capture_output=True, text=True, timeout=WAIT_S, env=clean_env(), check=False
    )
    assert result.returncode == 0, f"bridge healthcheck failed: {result.stdout}{result.stderr}"


CHECKS: Final[dict[str, Callable[[Proc, list[str], Proc, int], None]]] = {
    "simulator": check_meter,
    "bridge": check_bridge,
}


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Proc]:
    """Mosquitto from the project's config on a free loopback port, stopped (exit code 0) after the test."""
    require_mosquitto()
    proc = start_project_mosquitto(tmp_path / "broker")
    try:
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"mosquitto exited with {code}:\n{proc.log()[-3000:]}"


# --- (a) the shape of the compose file --------------------------------------------------------------------------


def test_services_are_the_fleet() -> None:
    """Exactly the credentials step, the broker, three meters and the bridge."""
    assert set(SERVICES) == EXPECTED_SERVICES


def test_broker_service_runs_mosquitto_with_the_project_config() -> None:
    """eclipse-mosquitto at an exact version, with config/mosquitto mounted read-only, a data volume, the credentials
    read-only, and 1883 on host loopback only, once mqtt-auth has written the credentials."""
    broker = SERVICES[BROKER_SERVICE]
    assert re.fullmatch(r"eclipse-mosquitto:\d+\.\d+\.\d+", broker["image"]), f"{broker['image']}: pin a version"
    assert broker["image"] == MOSQUITTO_IMAGE
    assert "build" not in broker
    volumes = [str(volume) for volume in broker["volumes"]]
    assert "./config/mosquitto:/mosquitto/config:ro" in volumes
    assert (ROOT / "config" / "mosquitto" / "mosquitto.conf").is_file()
    options = conf_options(MOSQUITTO_CONF.read_text())
    data_dir = options["persistence_location"][0].rstrip("/")
    assert any(volume.split(":")[1] == data_dir and not volume.startswith((".", "/")) for volume in volumes), (
        f"no named volume at the persistence location {data_dir}"
    )
    assert mounts(broker)[AUTH_VOLUME] == (auth_dir_in(broker), True)
    dynsec_file = options["plugin_opt_config_file"][0]
    assert dynsec_file.startswith(f"{auth_dir_in(broker)}/"), f"{dynsec_file} is not in the {AUTH_VOLUME} volume"
    assert broker["depends_on"] == {AUTH_SERVICE: {"condition": "service_completed_successfully"}}
    listener_port = int(options["listener"][0].split()[0])
    assert published(broker["ports"]) == {listener_port: (LOOPBACK, 1883)}
    assert broker["restart"] == "unless-stopped"
    check = healthcheck_argv(broker, {})
    assert check[:2] == ["sh", "-c"], check
    assert check[2].startswith("mosquitto_sub "), check
    assert "-u observer" in check[2], "the healthcheck logs in as the read-only observer"
    assert "'$SYS/broker/version'" in check[2], "the healthcheck reads a $SYS topic (written $$SYS in compose)"


def test_auth_service_writes_the_credentials_into_the_shared_volume() -> None:
    """mqtt-auth: this image, ``python -m broker mosquitto-auth`` into the mqtt-auth volume, files for Mosquitto's
    user and the secret for the image's user; the same secret and households as the meters and the bridge."""
    auth = SERVICES[AUTH_SERVICE]
    assert auth["build"] == "."
    command = auth["command"]
    assert command[:4] == ["python", "-m", "broker", "mosquitto-auth"]
    assert option(command, "--out") == auth_dir_in(auth)
    assert mounts(auth)[AUTH_VOLUME] == (auth_dir_in(auth), False)
    assert option(command, "--owner") == f"{MOSQUITTO_UID}:{MOSQUITTO_UID}"
    assert option(command, "--secret-owner") == "fleet"
    assert auth["user"] == "root"
    assert "restart" not in auth, "a one-shot step: restarting it would keep the broker waiting"
    env = environment(auth)
    assert localize(env["FLEET_MQTT_SECRET"], auth, Path("/local")) == "/local/mqtt-secret"
    for name in APP_SERVICES:
        service = SERVICES[name]
        assert mounts(service)[AUTH_VOLUME] == (auth_dir_in(service), True), f"{name}: mount {AUTH_VOLUME} read-only"
        secret = environment(service)["FLEET_MQTT_SECRET"]
        assert localize(secret, service, Path("/local")) == "/local/mqtt-secret", name
    assert load_settings(env).households == load_settings(environment(SERVICES["bridge"])).households


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_uses_the_image_and_exec_form(name: str) -> None:
    """Meters and bridge build this repository's Dockerfile, run ``python -m <package>`` and wait for the broker."""
    service = SERVICES[name]
    build = service["build"]
    context = build if isinstance(build, str) else build["context"]
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context).resolve() == ROOT
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE
    assert "image" not in service
    assert "entrypoint" not in service
    command = service["command"]
    assert isinstance(command, list), f"{name}: command must use the exec (list) form"
    assert all(isinstance(word, str) for word in command), command
    assert command[:2] == ["python", "-m"], command
    assert command[2] in packages_with_main(), f"{name}: {command[2]} is not one of this project's runnable packages"
    assert command[2] in CHECKS, f"{name}: no check here for python -m {command[2]}"
    assert service["depends_on"] == {BROKER_SERVICE: {"condition": "service_healthy"}}


def test_bridge_publishes_port_5000_on_host_loopback() -> None:
    """The bridge binds all interfaces of its container on 5000, published on the host's 127.0.0.1:5000."""
    bridge = SERVICES["bridge"]
    command = bridge["command"]
    assert command[:3] == ["python", "-m", "bridge"]
    assert option(command, "--host") == "0.0.0.0"  # inside the container; the host side is loopback only
    assert int(option(command, "--port")) == BRIDGE_CONTAINER_PORT
    assert published(bridge["ports"]) == {BRIDGE_CONTAINER_PORT: (LOOPBACK, BRIDGE_CONTAINER_PORT)}
    assert healthcheck_argv(bridge, {})[0] == "python"


def test_meters_run_one_household_each() -> None:
    """meter-a, meter-b and meter-c run households A, B and C."""
    assert meter_households() == {"meter-a": "A", "meter-b": "B", "meter-c": "C"}


def test_dockerfile_copies_what_pip_install_needs() -> None:
    """The image copies pyproject.toml, README.md and every package, installs them, and runs as a non-root user."""
    text = DOCKERFILE.read_text()
    instructions = dockerfile_instructions(text)
    assert instructions[0] == ["FROM", "python:3.11-slim"]
    copied = {source for keyword, rest in instructions if keyword == "COPY" for source in rest.split()[:-1]}
    top_level = top_level_packages()  # each subpackage comes with its top-level folder
    assert {"pyproject.toml", "README.md", *top_level} <= copied
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
    assert "pip install --no-cache-dir ." in text
    users = [rest.strip() for keyword, rest in instructions if keyword == "USER"]
    assert users, "no USER: the image would run as root"
    assert users[-1] not in ("root", "0")
    assert ["EXPOSE", str(BRIDGE_CONTAINER_PORT)] in instructions
    cmd = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert len(cmd) == 1
    assert json.loads(cmd[0])[:3] == ["python", "-m", "bridge"]
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".venv", ".git", "tests", "bench", "docs"} <= ignored
    assert not copied & ignored, f"COPY of an ignored path: {copied & ignored}"


def test_app_services_keep_their_data_on_named_volumes() -> None:
    """Each meter's outbox and the bridge's history live on a named volume of their own, mounted writable at the
    service's FLEET_DATA_DIR, which the image creates for its user: ``down``/``up`` and ``up --build`` keep them."""
    volumes = declared_volumes()
    sources = {}
    for name in APP_SERVICES:
        service = SERVICES[name]
        data_dir = data_dir_in(service)
        on_data_dir = [(source, ro) for source, (target, ro) in mounts(service).items() if target == data_dir]
        assert len(on_data_dir) == 1, f"{name}: no volume at its data directory {data_dir}"
        source, read_only = on_data_dir[0]
        assert source in volumes, f"{name}: {source} is not a named volume of the compose file"
        assert not read_only, f"{name}: its data volume must be writable"
        sources[name] = source
    assert len(set(sources.values())) == len(sources), f"services share a data volume: {sources}"
    owned = dockerfile_owned_dirs(DOCKERFILE.read_text())
    users = [rest.strip() for keyword, rest in dockerfile_instructions(DOCKERFILE.read_text()) if keyword == "USER"]
    assert users[-1] == FLEET_USER
    for name in APP_SERVICES:
        assert "user" not in SERVICES[name], f"{name} runs as the image's user {FLEET_USER}"
        assert owned.get(data_dir_in(SERVICES[name])) == FLEET_USER, (
            f"{name}: the image does not create {data_dir_in(SERVICES[name])} for {FLEET_USER} (found {owned})"
        )
    assert dockerfile_env()["FLEET_DATA_DIR"] in owned, "the image's own FLEET_DATA_DIR is not writable"


def test_dockerfile_owned_dirs_reads_install_d() -> None:
    """The parser above: ``install -d -o USER -g GROUP -m MODE DIR...`` in a RUN, skipping options' values."""
    text = "RUN pip install . \\\n    && install -d -o fleet -g fleet -m 0750 /var/lib/fleet /srv/x && mkdir /y\n"
    assert dockerfile_owned_dirs(text) == {"/var/lib/fleet": "fleet", "/srv/x": "fleet"}
    assert dockerfile_owned_dirs("RUN mkdir -p /var/lib/fleet\n") == {}


def _raw_services() -> dict[str, Any]:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    assert isinstance(services, dict)
    return services


def test_speed_and_time_zone_reach_every_meter_and_the_bridge() -> None:
    """FLEET_SPEED and FLEET_TZ are passed from the host to every service that reads them, with one default: with
    ``FLEET_SPEED=60 FLEET_TZ=Asia/Kolkata docker compose up`` meters and bridge all run at 60x in that zone."""
    raw = _raw_services()
    host = {"FLEET_SPEED": "60", "FLEET_TZ": "Asia/Kolkata"}
    for key in host:
        values = {name: environment(raw[name]).get(key) for name in APP_SERVICES}
        assert None not in values.values(), f"{key} does not reach {[n for n, v in values.items() if v is None]}"
        assert len(set(values.values())) == 1, f"{key} differs between services: {values}"
    for name in APP_SERVICES:
        settings = load_settings(environment(interpolate(raw[name], host)))
        assert (settings.speed, settings.tz) == (60.0, "Asia/Kolkata"), name


def validate_compose(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema on ``path`` with the Compose specification's schema it ships; any network use would fail
    (proxies at a closed loopback port): the check works offline."""
    dead_proxy = f"http://{LOOPBACK}:9"
    env = clean_env({"HTTP_PROXY": dead_proxy, "HTTPS_PROXY": dead_proxy, "ALL_PROXY": dead_proxy, "NO_PROXY": ""})
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", COMPOSE_SCHEMA, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_file_follows_the_compose_specification() -> None:
    """docker-compose.yml validates against the Compose specification's JSON schema."""
    result = validate_compose(COMPOSE_FILE)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda doc: doc["services"][BROKER_SERVICE].__setitem__("ports", 1883), "ports"),
        (lambda doc: doc.__setitem__("volume", {"extra": None}), "volume"),
        (lambda doc: doc["services"]["bridge"].__setitem__("restart", ["always"]), "restart"),
    ],
    ids=["ports-as-a-scalar", "unknown-top-level-key", "restart-as-a-list"],
)
def test_compose_schema_check_rejects_a_broken_edit(
    edit: Callable[[dict[str, Any]], None], named: str, tmp_path: Path
) -> None:
    """A copy of docker-compose.yml with one mistake fails the check, with a message that names the mistake."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    edit(document)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(document, sort_keys=False))
    result = validate_compose(broken)
    assert result.returncode == 1, f"the broken copy passed:\n{result.stdout}{result.stderr}"
    assert f"'{named}'" in result.stdout or f".{named}:" in result.stdout, result.stdout


# --- (b) the environment ------------------------------------------------------------------------------------------


def check_environment(env: Mapping[str, str]) -> None:
    """Every variable is a FLEET_* key the settings know, and together they load."""
    unknown = sorted(key for key in env if key not in KNOWN_KEYS)
    assert not unknown, f"not settings of config/options.py (KNOWN_KEYS): {unknown}"
    assert all(key.startswith(PREFIX) for key in env)
    try:
        load_settings(env)
    except ConfigError as exc:
        pytest.fail(f"load_settings rejects the environment: {exc}")


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES))
def test_environment_is_known_settings(name: str) -> None:
    """Each service's environment passes ``load_settings``, with every key in KNOWN_KEYS."""
    check_environment(environment(SERVICES[name]))


@pytest.mark.parametrize("env", [{"FLEET_SPEEED": "60"}, {"TZ": "UTC"}, {"FLEET_SPEED": "fast"}])
def test_environment_check_catches_mistakes(env: dict[str, str]) -> None:
    """The check above fails on a misspelt key, a non-setting and a bad value."""
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        check_environment(env)


def test_services_agree_on_shared_settings() -> None:
    """Meters and bridge use the same broker and time zone; the bridge expects exactly the meters' households."""
    settings = {name: load_settings(environment(SERVICES[name])) for name in APP_SERVICES}
    assert len({s.broker for s in settings.values()}) == 1
    assert len({s.tz for s in settings.values()}) == 1
    assert set(settings["bridge"].households) == set(meter_households().values())


def test_interpolation_defaults_and_overrides() -> None:
    """The compose substitution used above: defaults, host overrides, and $$ for a literal $."""
    assert interpolate("${FLEET_SPEED:-1}", {}) == "1"
    assert interpolate("${FLEET_SPEED:-1}", {"FLEET_SPEED": "60"}) == "60"
    assert interpolate("$$SYS/#", {}) == "$SYS/#"
    with pytest.raises(ValueError, match="no default"):
        interpolate("${FLEET_TZ}", {})


# --- (c) each service's command, for real -------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.mosquitto
@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_command_runs(name: str, mosquitto: Proc, tmp_path: Path) -> None:
    """The service's command and environment, on loopback, does its job and exits 0 on SIGTERM."""
    service = SERVICES[name]
    command: list[str] = service["command"]
    assert mosquitto.port is not None
    http_port = free_port()
    proc = start(
        name,
        local_argv(command, http_port),
        tmp_path / "logs",
        env=local_env(service, mosquitto.port, project_auth_dir(mosquitto), tmp_path / "data"),
        port=http_port,
    )
    try:
        CHECKS[command[2]](proc, command, mosquitto, http_port)
        assert proc.alive(), f"{name} exited with {proc.popen.returncode}:\n{proc.log()[-3000:]}"
    finally:
        code = proc.stop()
    assert code == 0, f"{name} exited with {code} on SIGTERM:\n{proc.log()[-3000:]}"


# --- (d) the Mosquitto config ------------------------------------------------------------------------------------


def test_mosquitto_conf_settings() -> None:
    """Listener on every interface of the container, the fleet's users and rules only (dynamic security), the fleet's
    packet size limit, persistent, stdout logs, deep queues."""
    options = conf_options(MOSQUITTO_CONF.read_text())
    assert options["listener"] == ["1883"]
    assert options["allow_anonymous"] == ["false"]
    assert "password_file" not in options  # the dynamic security plugin instead: it binds logins to client ids
    assert "acl_file" not in options
    assert options["plugin"] == ["/usr/lib/mosquitto_dynamic_security.so"]  # in eclipse-mosquitto:2
    assert options["plugin_opt_config_file"] == [f"/mosquitto/auth/{MOSQUITTO_DYNSEC}"]
    assert options["max_packet_size"] == [str(MAX_PACKET_BYTES)]
    assert options["persistence"] == ["true"]
    assert options["persistence_location"] == ["/mosquitto/data/"]
    assert int(options["autosave_interval"][0]) > 0
    assert options["log_dest"] == ["stdout"]
    assert int(options["max_queued_messages"][0]) >= 10_000  # the default 1000 drops QoS 1 for a slow subscriber
    assert int(options["max_inflight_messages"][0]) >= 1


@pytest.mark.integration
@pytest.mark.mosquitto
def test_mosquitto_starts_with_the_project_config(tmp_path: Path) -> None:
    """Mosquitto parses the config, keeps running, passes the compose healthcheck and saves to its data dir."""
    require_mosquitto()
    proc = start_project_mosquitto(tmp_path)
    try:
        _wait_on(proc, 1.0)  # a second of running: anything that fails after the listener opens shows here
        assert proc.alive(), f"mosquitto exited with {proc.popen.returncode}:\n{proc.log()}"
        assert proc.port is not None
        broker = SERVICES[BROKER_SERVICE]
        replacements = {
            "-p 1883 ": f"-p {proc.port} ",
            f"{auth_dir_in(broker)}/": f"{project_auth_dir(proc)}/",
        }
        check = healthcheck_argv(broker, replacements)
        result = subprocess.run(check, capture_output=True, text=True, timeout=WAIT_S, check=False)
        assert result.returncode == 0, f"broker healthcheck failed ({result.returncode}): {result.stderr}"
        assert result.stdout.startswith("mosquitto version 2"), result.stdout
    finally:
        code = proc.stop()
    assert code == 0, f"mosquitto exited with {code}:\n{proc.log()}"
    assert (tmp_path / "mosquitto-data" / "mosquitto.db").is_file(), "persistence did not write to its location"


@pytest.mark.integration
@pytest.mark.mosquitto
def test_project_mosquitto_lets_in_only_the_fleet(mosquitto: Proc) -> None:
    """With the project's config and mqtt-auth's files: anonymous clients, wrong passwords and meter A's login with
    any client id but ``meter-A`` are refused, and meter A cannot publish for meter B (its forged reading never
    arrives before A's own marker)."""
    assert mosquitto.port is not None
    secret = project_auth_dir(mosquitto) / "mqtt-secret"
    sub = ["mosquitto_sub", "-h", LOOPBACK, "-p", str(mosquitto.port), "-t", "meters/#", "-C", "1", "-W", "3"]
    a_password = login("A", secret)["password"]
    for credentials in (
        [],
        ["-u", "observer", "-P", "wrong"],
        ["-u", "A", "-P", login("B", secret)["password"]],
        ["-u", "A", "-P", a_password, "-i", "meter-B"],  # A's login with B's client id
        ["-u", "A", "-P", a_password],  # ... or mosquitto_sub's own
    ):
        result = subprocess.run([*sub, *credentials], capture_output=True, text=True, timeout=WAIT_S, check=False)
        assert result.returncode != 0, credentials
        assert "not authorised" in result.stderr, result.stderr
    meter_a = login("A", secret)
    with collecting(mosquitto.port, ["meters/#"], secret=secret) as observer:
        for topic, payload in (("meters/B/reading", "forged"), ("meters/A/reading", "marker")):
            publish.single(
                topic, payload, qos=1, hostname=LOOPBACK, port=mosquitto.port, auth=meter_a, client_id="meter-A"
            )
        before = []
        while (msg := observer.messages.get(timeout=WAIT_S)).payload != b"marker":
            before.append(msg)
    assert before == []
