"""The worker SIGKILLed during every workflow type: each accepted request has its effect once.

The sink refuses (503) until the worker is killed, so at the kill no workflow has
finished: every one is somewhere between its start and its last reply (verifying,
calling the Authority or the DNS, storing, emitting).
"""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.accounts import AccountCreation
from benchmarks.chaos_stack import Refusals, VeraidPairs, drive
from benchmarks.connection_params import ConnectionParamsRetrieval
from benchmarks.mixed import Authorisations, LegacyPairs
from tests.fault_stack import StartFaultStack, assert_exactly_once, fault_stack_fixture, until

__all__ = ["fault_stack_fixture"]  # the start_fault_stack fixture

pytestmark = pytest.mark.integration

# Workflow type (as the ids show) -> the module whose requests start it.
WORKFLOWS = {
    "veraid-pairing": VeraidPairs.name,
    "legacy-pairing": LegacyPairs.name,
    "account-creation": AccountCreation.name,
    "connection-params": ConnectionParamsRetrieval.name,
    "forwarding": Authorisations.name,
    "refusal": Refusals.name,
}


@pytest.mark.parametrize("module", WORKFLOWS.values(), ids=WORKFLOWS.keys())
async def test_worker_killed_mid_workflow_loses_and_doubles_nothing(
    start_fault_stack: StartFaultStack, module: str
) -> None:
    run = await start_fault_stack(per_module=5, names=[module], sink_status=503)
    sink = run.stack.sink
    sender = run.sender()
    driving = asyncio.create_task(drive(sender, run.flights))
    # The first reply attempt means workflows are under way, and none has completed.
    await until(lambda: bool(run.recorder.attempted_ids), 30, "a first reply attempt")
    await run.stack.kill_workers()
    assert run.recorder.events == []
    sink.faults.status = None
    await run.stack.start_worker()
    await driving

    result = await run.finish()

    assert_exactly_once(result)
    assert sink.faults.answered[503] >= 1
