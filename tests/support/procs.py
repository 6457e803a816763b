"""Real processes on loopback for integration tests and benchmarks: brokers, meters, the bridge.

Every wait is bounded and waits on something (a port, a process, a queue), never a bare sleep.

Authentication is on, as in production: every process started here gets ``FLEET_MQTT_SECRET`` pointing at one fleet
secret made for this test run (``fleet_secret``), so brokers, meters and bridge agree on the passwords whatever their
data directories; a test's own MQTT clients log in with ``login(user)``. Brokers know the meters ``TEST_METERS``
unless told others (``start_broker(..., meters=...)``).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from broker.auth_files import MOSQUITTO_DYNSEC, write_mosquitto_auth
from broker.limits import MAX_PACKET_BYTES
from config.credentials import fleet_rules, password_for
from config.secret import load_or_create_secret
from config.settings import DEFAULT_HA_PREFIX

LOOPBACK = "127.0.0.1"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Meters the test brokers let in: those the tests run (A, B, C), D (configured, never running) and Z (garbage).
TEST_METERS = ("A", "B", "C", "D", "Z")


@functools.cache
def fleet_secret() -> Path:
    """The fleet secret file of this test run (made on first use, removed at exit)."""
    work = Path(tempfile.mkdtemp(prefix="fleet-test-secret-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    path = work / "mqtt-secret"
    load_or_create_secret(path)
    return path


def login(user: str, secret: Path | None = None) -> dict[str, str]:
    """paho's ``auth`` of ``user`` (a meter id, bridge, homeassistant or observer) under ``secret`` (default: the
    test run's)."""
    return {"username": user, "password": password_for(load_or_create_secret(secret or fleet_secret()), user)}


def free_port() -> int:
    """A TCP port free on loopback right now (the OS picks it: port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on loopback right now: each socket stays bound until all are chosen (one
    ``free_port`` after another may get the same port back from the OS)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """``GET path`` from a server on loopback ``port``: the status and the body, error statuses included."""
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


def get_json(port: int, path: str) -> dict[str, object]:
    """The JSON object at ``path`` on loopback ``port`` (an error status's JSON body too: a 503 from /healthz)."""
    status, body = http_get(port, path)
    doc = json.loads(body)
    assert isinstance(doc, dict), (status, body[:200])
    return doc


def procfile_env(data_dir: Path, speed: str = "10") -> tuple[int, int, dict[str, str]]:
    """Free MQTT and HTTP ports and the environment for the Procfile's processes as `make up` starts them: those
    ports, ``FLEET_SPEED``, the data directory, and this interpreter's virtualenv first on PATH."""
    mqtt_port, http_port = free_ports(2)
    env = clean_env(
        {
            "FLEET_MQTT_PORT": str(mqtt_port),
            "FLEET_HTTP_PORT": str(http_port),
            "FLEET_SPEED": speed,
            "FLEET_DATA_DIR": str(data_dir),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return mqtt_port, http_port, env


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any FLEET_* variable but the test run's secret and no warm-up, plus
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["FLEET_MQTT_SECRET"] = str(fleet_secret())
    # No warm-up (the simulator's default is a day of past data on a meter's first start): tests count a meter's
    # readings from its first live second; a test of the warm-up sets FLEET_WARMUP or --warmup itself.
    env["FLEET_WARMUP"] = "0"
    env.update(extra or {})
    return env


@dataclass
class Proc:
    """A started process whose output goes to a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.popen.poll() is None

    def wait_port(self, port: int, timeout: float = 20.0) -> None:
        """Wait until ``port`` accepts connections; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode} before listening:\n{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
            # Waiting on the process (not sleeping): returns at once if it dies.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=0.05)
        raise TimeoutError(f"{self.name} did not listen on {port} within {timeout} s:\n{self.log()}")

    def wait_mqtt(self, port: int, timeout: float = 20.0) -> None:
        """Wait until the bridge on ``port`` reports ``"mqtt": "connected"`` in ``/healthz``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError, ValueError),
                urllib.request.urlopen(f"http://{LOOPBACK}:{port}/healthz", timeout=2) as response,
            ):
                if json.loads(response.read()).get("mqtt") == "connected":
                    return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log()}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=0.05)  # waiting on the process, not sleeping: returns at once if it dies
        raise TimeoutError(f"{self.name} did not connect to its broker within {timeout} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit code (SIGKILL after ``timeout``)."""
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        return int(self.popen.returncode)


def start(
    name: str, argv: Sequence[str], log_dir: Path, env: Mapping[str, str] | None = None, port: int | None = None
) -> Proc:
    """Start ``argv`` in ``log_dir`` (so relative paths such as the bridge's ./data stay there), output to
    ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            list(argv),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=dict(env or clean_env()),
            stdin=subprocess.DEVNULL,
            cwd=log_dir,
        )
    return Proc(name, popen, log_path, port)


def python_module(module: str, *args: str) -> list[str]:
    """argv to run ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def mosquitto_missing() -> str | None:
    """Why Mosquitto tests cannot run here, or None."""
    missing = [tool for tool in ("mosquitto", "mosquitto_sub", "mosquitto_pub") if _which(tool) is None]
    if missing:
        return f"Mosquitto tools not installed ({', '.join(missing)}): apt-get install -y mosquitto mosquitto-clients"
    return None


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/local/sbin:/sbin")


def mosquitto_binary() -> str:
    """Path of the mosquitto broker binary."""
    found = _which("mosquitto")
    if found is None:
        raise RuntimeError("mosquitto not installed")
    return found


# Mosquitto's dynamic security plugin: where Debian's mosquitto package puts it, and the eclipse-mosquitto:2 image.
DYNSEC_PLUGINS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)


def dynsec_plugin() -> str:
    """Path of Mosquitto's dynamic security plugin on this machine."""
    for path in DYNSEC_PLUGINS:
        if Path(path).is_file():
            return path
    raise RuntimeError(f"Mosquitto's dynamic security plugin is in none of {', '.join(DYNSEC_PLUGINS)}")


def mosquitto_auth(work_dir: Path, meters: Sequence[str] = TEST_METERS, secret: Path | None = None) -> list[str]:
    """Write Mosquitto's dynamic-security file for ``meters`` (and the service users) into ``work_dir``; the config
    lines that load it."""
    rules = fleet_rules(load_or_create_secret(secret or fleet_secret()), meters, DEFAULT_HA_PREFIX)
    write_mosquitto_auth(work_dir, rules)
    return [
        "allow_anonymous false",
        f"plugin {dynsec_plugin()}",
        f"plugin_opt_config_file {work_dir / MOSQUITTO_DYNSEC}",
    ]


def mosquitto_test_config(port: int, work_dir: Path, auth: Sequence[str] = ("allow_anonymous true",)) -> str:
    """A Mosquitto 2 config for tests: loopback listener, ``auth`` lines (``mosquitto_auth``; default anonymous), the
    fleet's maximum packet size, no persistence, logs on stderr."""
    lines = [
        f"listener {port} {LOOPBACK}",
        *auth,
        "persistence false",
        f"persistence_location {work_dir}/",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "max_queued_messages 100000",
        f"max_packet_size {MAX_PACKET_BYTES}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lines.append("user root")  # as root Mosquitto would drop to user mosquitto, which cannot write work_dir
    return "\n".join(lines) + "\n"


def start_broker(
    kind: str,
    log_dir: Path,
    *,
    meters: Sequence[str] = TEST_METERS,
    anonymous: bool = False,
    port: int | None = None,
    mosquitto_lines: Sequence[str] = (),
) -> Proc:
    """Start an ``amqtt`` (our ``python -m broker``) or ``mosquitto`` broker on a free loopback port (or ``port``: a
    restart), letting in the service users and ``meters`` with the test run's secret (anyone at all with
    ``anonymous``); ``mosquitto_lines`` are added to a Mosquitto config (later lines win)."""
    port = free_port() if port is None else port
    if kind == "amqtt":
        env = {"FLEET_HOUSEHOLDS": ",".join(meters), "FLEET_MQTT_ANONYMOUS": str(anonymous).lower()}
        argv = python_module("broker", "--host", LOOPBACK, "--port", str(port))
        proc = start("broker-amqtt", argv, log_dir, env=clean_env(env), port=port)
    elif kind == "mosquitto":
        conf = log_dir / f"mosquitto-{port}.conf"
        log_dir.mkdir(parents=True, exist_ok=True)
        auth = ["allow_anonymous true"] if anonymous else mosquitto_auth(log_dir / f"mosquitto-{port}-auth", meters)
        conf.write_text(mosquitto_test_config(port, log_dir, auth) + "".join(f"{line}\n" for line in mosquitto_lines))
        proc = start("broker-mosquitto", [mosquitto_binary(), "-c", str(conf)], log_dir, port=port)
    else:
        raise ValueError(kind)
    proc.wait_port(port)
    return proc


def start_meters(
    broker_port: int,
    households: Sequence[str],
    log_dir: Path,
    *,
    speed: float = 1.0,
    start_at: str | None = None,
    seed: int = 1,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
    profile: str = "classic",
    extra: Sequence[str] = (),
) -> Proc:
    """Start one simulator process running ``households`` (classic profile unless told: its values are exact)."""
    argv = python_module(
        "simulator",
        "run",
        "--broker",
        f"mqtt://{LOOPBACK}:{broker_port}",
        "--speed",
        str(speed),
        "--seed",
        str(seed),
        "--profile",
        profile,
        *extra,
    )
    for household in households:
        argv += ["--household", household]
    if start_at is not None:
        argv += ["--start", start_at]
    return start(name or f"meters-{'-'.join(households)}", argv, log_dir, env=clean_env(env))


def start_bridge(
    broker_port: int, log_dir: Path, env: Mapping[str, str] | None = None, *, wait_mqtt: bool = True
) -> Proc:
    """Start the bridge (gunicorn + gevent) on a free port and wait until it serves HTTP and (``wait_mqtt``) says it
    is connected to the broker: it subscribes on connecting, so meters started after this are heard from their first
    reading (a bridge's very first session cannot hear what was published before it subscribed)."""
    port = free_port()
    argv = python_module(
        "bridge", "--broker", f"mqtt://{LOOPBACK}:{broker_port}", "--host", LOOPBACK, "--port", str(port)
    )
    proc = start("bridge", argv, log_dir, env=clean_env(env), port=port)
    proc.wait_port(port)
    if wait_mqtt:
        proc.wait_mqtt(port)
    return proc


def children(pid: int) -> list[int]:
    """The direct children of process ``pid`` (from /proc; none if it is gone)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def signal_tree(proc: Proc, sig: int) -> None:
    """Send ``sig`` to a process and its children (the bridge is gunicorn: a master and its worker)."""
    for pid in [proc.popen.pid, *children(proc.popen.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``check`` every 0.1 s (bounded) until it is true; AssertionError naming ``what`` after ``seconds``.
    An OSError from ``check`` (a bridge restarting) counts as not yet."""
    tick = threading.Event()
    for _ in range(int(seconds / 0.1)):
        with contextlib.suppress(OSError):
            if check():
                return
        tick.wait(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[tuple[Proc, ...]]:
    """Stop the processes (SIGTERM) on the way out, whatever happened."""
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            proc.stop()
