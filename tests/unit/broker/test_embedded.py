"""broker.embedded's bounded shutdown: amqtt's own ``shutdown`` once hung with meters connected, and the process then
outlived every supervisor's patience (SIGKILL after 15 s). ``finished`` is the bound the broker's exit waits under."""

from __future__ import annotations

import asyncio

from broker.embedded import LEFTOVER_WAIT_S, SHUTDOWN_GRACE_S, SHUTDOWN_TIMEOUT_S, finished
from config.run.procfile import KILL_AFTER_S


def test_work_that_finishes_is_reported_finished() -> None:
    done: list[bool] = []

    async def work() -> None:
        await asyncio.sleep(0)
        done.append(True)

    assert asyncio.run(finished(work(), 5.0)) is True
    assert done == [True]


def test_work_that_hangs_is_cancelled_and_reported_unfinished() -> None:
    cancelled: list[bool] = []

    async def hang() -> None:
        try:
            await asyncio.Event().wait()  # nothing ever sets it
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    assert asyncio.run(finished(hang(), 0.05)) is False
    assert cancelled == [True]


def test_the_whole_stop_fits_in_a_supervisors_patience() -> None:
    """The grace, amqtt's shutdown and the wait for its leftover tasks add up to less than the time after which
    ``config.run.supervise`` sends SIGKILL (the tests' process helper waits longer, 15 s)."""
    assert SHUTDOWN_GRACE_S + SHUTDOWN_TIMEOUT_S + LEFTOVER_WAIT_S < KILL_AFTER_S
