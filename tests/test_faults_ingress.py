"""An ingress SIGKILLed in the middle of requests: the sender retries with the same parcel
ids on the other ingress (then on the restarted one), and nothing is lost or doubled.

A request cut off after the ingress handed it to Temporal but before it answered is sent
again: the server must recognise the parcel and not act on it twice.
"""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.chaos_stack import drive
from tests.fault_stack import StartFaultStack, assert_exactly_once, fault_stack_fixture, until

__all__ = ["fault_stack_fixture"]  # the start_fault_stack fixture

pytestmark = pytest.mark.integration


async def test_ingress_killed_mid_request_and_sender_retrying_elsewhere_loses_nothing(
    start_fault_stack: StartFaultStack,
) -> None:
    run = await start_fault_stack(per_module=2, ingresses=2)
    sender = run.sender()
    driving = asyncio.create_task(drive(sender, run.flights))
    # Some requests taken, others on their way to the first ingress.
    await until(lambda: sender.accepted >= 3, 30, "the first requests accepted")
    await run.stack.kill_ingress(0)
    accepted_at_kill = sender.accepted
    await until(lambda: sender.failures["connection"] > 0, 20, "a request cut off")
    await run.stack.start_ingress(0)
    await driving
    result = await run.finish()

    assert_exactly_once(result)
    assert accepted_at_kill < result.accepted
