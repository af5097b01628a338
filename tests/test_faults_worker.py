"""The worker SIGKILLed while every workflow type runs: each accepted request has its effect once.

The sink refuses (503) until the worker is killed, so at the kill no workflow has finished:
each is somewhere between its start and its reply (verifying, calling the Authority or the
DNS, storing, emitting), and Temporal lists every type as running.
"""

from __future__ import annotations

import pytest
from temporalio.client import Client

from benchmarks.chaos_stack import drive
from tests.fault_stack import StartFaultStack, assert_exactly_once, fault_stack_fixture, until

__all__ = ["fault_stack_fixture"]  # the start_fault_stack fixture

pytestmark = pytest.mark.integration

WORKFLOW_TYPES = {
    "VeraidContactPairing",
    "LegacyContactPairing",
    "ContactPairingRefusal",
    "AccountCreation",
    "ConnectionParamsRetrieval",
    "ForwardServiceMessage",
}


async def running_types(address: str) -> set[str]:
    client = await Client.connect(address)
    return {
        execution.workflow_type
        async for execution in client.list_workflows("ExecutionStatus = 'Running'")
    }


async def test_worker_killed_during_every_workflow_type_loses_and_doubles_nothing(
    start_fault_stack: StartFaultStack,
) -> None:
    run = await start_fault_stack(per_module=2, sink_status=503)
    sink = run.stack.sink
    await drive(run.sender(), run.flights)
    await until(lambda: bool(run.recorder.attempted_ids), 30, "a first reply attempt")
    running = await running_types(run.stack.temporal.address)
    await run.stack.kill_workers()

    assert running == WORKFLOW_TYPES
    assert run.recorder.events == []
    sink.faults.status = None
    await run.stack.start_worker()
    result = await run.finish()

    assert_exactly_once(result)
    assert sink.faults.answered[503] >= 1
