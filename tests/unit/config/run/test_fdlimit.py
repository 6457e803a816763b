"""config.run.fdlimit's pure parts: which soft limit to ask for, and the error for a number of sockets that cannot
fit."""

from __future__ import annotations

import resource

import pytest

from bridge.http.server import FD_MARGIN, MAX_CONNECTIONS, worker_connections
from config.errors import ConfigError
from config.run.fdlimit import check_fits, target

INFINITY = resource.RLIM_INFINITY


@pytest.mark.parametrize(
    ("soft", "hard", "wanted"),
    [
        (1024, 524_288, 524_288),  # the usual: raise to the hard limit
        (20_000, 20_000, 20_000),  # already there
        (1024, INFINITY, 1024),  # Linux refuses an infinite soft limit for descriptors: keep it
        (INFINITY, INFINITY, INFINITY),
    ],
)
def test_target_is_the_hard_limit_when_it_is_finite(soft: int, hard: int, wanted: int) -> None:
    assert target(soft, hard) == wanted


def test_a_number_that_fits_passes() -> None:
    check_fits(1024, 1024, "--fleet", "sockets")
    check_fits(10**9, INFINITY, "--fleet", "sockets")


def test_a_number_over_the_limit_names_the_key_the_numbers_and_how_to_raise_it() -> None:
    with pytest.raises(ConfigError) as caught:
        check_fits(2064, 1024, "--fleet", "one socket per meter for 2000 meters plus 64")
    assert caught.value.key == "--fleet"
    message = str(caught.value)
    assert message.startswith("--fleet: needs 2064 open files (one socket per meter for 2000 meters plus 64)")
    assert "may open only 1024" in message
    for how in ("ulimit -n", "ulimit -Hn", "/etc/security/limits.conf", "LimitNOFILE", "--ulimit nofile", "ulimits"):
        assert how in message


@pytest.mark.parametrize(
    ("fd_limit", "connections"),
    [
        (1024, 1024 - FD_MARGIN),
        (20_000, 20_000 - FD_MARGIN),
        (1_048_576, MAX_CONNECTIONS),
        (INFINITY, MAX_CONNECTIONS),
        (50, 1),  # a limit below the bridge's own needs: it serves what it can
    ],
)
def test_the_bridge_takes_as_many_connections_as_its_descriptors_hold(fd_limit: int, connections: int) -> None:
    assert worker_connections(fd_limit) == connections
