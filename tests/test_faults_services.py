"""The Temporal server and mongod killed mid-load, and restarted on the same data.

Each test has its own Temporal and mongod (others share the session's). A first wave of
requests is under way (its first reply delivered) when the service is SIGKILLed; a second
wave is sent while it is down, by a sender that retries until the ingress answers 2xx, as
a broker does. After the restart, every accepted request has its effect exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from benchmarks.chaos_stack import drive
from tests.fault_stack import (
    FaultRun,
    StartFaultStack,
    assert_exactly_once,
    fault_stack_fixture,
    until,
)

__all__ = ["fault_stack_fixture"]  # the start_fault_stack fixture

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 3.0


async def first_wave_under_way(run: FaultRun) -> asyncio.Task[None]:
    sender = run.sender()
    driving = asyncio.create_task(drive(sender, run.waves[0]))
    await until(lambda: bool(run.recorder.events), 30, "a first reply")
    return driving


async def outage_loses_nothing(
    run: FaultRun, kill: Callable[[], Awaitable[None]], start: Callable[[], Awaitable[None]]
) -> None:
    """Kill a service mid-load, send the second wave while it is down, restart it, count."""
    first = await first_wave_under_way(run)
    await kill()
    delivered_at_kill = len(run.recorder.events)
    sender = run.sender()
    second = asyncio.create_task(drive(sender, run.waves[1]))
    # Either outage stops the ingress from taking anything: it answers 503 until the restart.
    await until(lambda: sender.failures["503"] > 0, 20, "the ingress answering 503")
    await asyncio.sleep(OUTAGE_SECONDS)
    await start()
    await asyncio.gather(first, second)
    result = await run.finish()

    assert_exactly_once(result)
    assert delivered_at_kill < result.expected


async def test_temporal_killed_and_restarted_on_its_database_loses_nothing(
    start_fault_stack: StartFaultStack,
) -> None:
    # Down, Temporal cannot take a message over.
    run = await start_fault_stack(per_module=1, waves=2)
    await outage_loses_nothing(run, run.stack.kill_temporal, run.stack.start_temporal)


async def test_mongod_killed_and_restarted_on_its_dbpath_loses_nothing(
    start_fault_stack: StartFaultStack,
) -> None:
    # Down, mongod cannot answer the ingress's look-up in its record of taken parcels (after
    # the client's server-selection timeout). Whether the worker meets the outage too depends
    # on where the first wave is.
    run = await start_fault_stack(per_module=1, waves=2)
    await outage_loses_nothing(run, run.stack.kill_mongod, run.stack.start_mongod)
