"""Shared fixtures: real brokers on free loopback ports (one broker per test; a NATS cluster per module); the
Mosquitto, nats-server and Chromium requirements (skip locally, fail in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chromium import chromium_binary, chromium_missing
from tests.support.nats import NatsCluster, nats_missing, start_nats_cluster
from tests.support.procs import CI, TEST_METERS, Proc, mosquitto_missing, start_broker


def require_mosquitto() -> None:
    """Skip (loudly) without the Mosquitto tools; in CI (CI=true) that is a failure, never a skip."""
    reason = mosquitto_missing()
    if reason is None:
        return
    if CI:
        pytest.fail(f"CI=true and {reason}; .ci/run must install them", pytrace=False)
    pytest.skip(f"!!! MOSQUITTO TESTS NOT RUN: {reason}")


def require_nats() -> None:
    """Skip (loudly) without nats-server; in CI (CI=true) that is a failure, never a skip."""
    reason = nats_missing()
    if reason is None:
        return
    if CI:
        pytest.fail(f"CI=true and {reason}; .ci/run must install it", pytrace=False)
    pytest.skip(f"!!! NATS TESTS NOT RUN: {reason}")


def require_chromium() -> str:
    """The Chromium binary; skip (loudly) without it, and in CI (CI=true) fail instead."""
    binary = chromium_binary()
    if binary is not None:
        return binary
    reason = chromium_missing()
    if CI:
        pytest.fail(f"CI=true and {reason}; .ci/run must install it", pytrace=False)
    pytest.skip(f"!!! CHROMIUM TESTS NOT RUN: {reason}")


@pytest.fixture(params=["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def broker_kind(request: pytest.FixtureRequest) -> str:
    """Each integration test that uses a broker runs on both: the embedded amqtt and Mosquitto 2."""
    kind = str(request.param)
    if kind == "mosquitto":
        require_mosquitto()
    return kind


@pytest.fixture
def broker(broker_kind: str, tmp_path: Path) -> Iterator[Proc]:
    """A real broker of ``broker_kind`` on a free loopback port, stopped after the test."""
    proc = start_broker(broker_kind, tmp_path / "logs")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def nats_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """A real 3-node NATS JetStream cluster on free loopback ports (MQTT on each node), shared by a test module; it
    lets in the service users and the module's ``NATS_METERS`` (default ``TEST_METERS``)."""
    require_nats()
    meters = getattr(request.module, "NATS_METERS", TEST_METERS)
    cluster = start_nats_cluster(tmp_path_factory.mktemp("nats"), meters=meters)
    try:
        yield cluster
    finally:
        codes = cluster.stop()
        assert codes == [0, 0, 0], f"nats-server exit codes {codes}:\n{cluster.log()[-5000:]}"
