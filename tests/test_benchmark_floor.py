"""The pairing benchmark's floor (``benchmarks.floor``): a pair completes once both requests
are in, its worker says so on standard output, and it runs as the pair workflows do."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client

from benchmarks.floor import (
    FLOOR_SIGNAL,
    FLOOR_WORKFLOW,
    REQUESTS_PER_PAIR,
    BenchmarkFloor,
    parse_completion,
)
from benchmarks.stack import wait_for_poller
from infra.processes import ChildProcess, python_module
from infra.services import TemporalDevServer
from workflows.legacy_pairing import LegacyContactPairing
from workflows.veraid_pairing import VeraidContactPairing

# A pair's completion takes a few workflow tasks; this bounds a broken floor's wait.
COMPLETION_TIMEOUT = 20.0


def test_the_floor_runs_in_or_out_of_the_sandbox_as_the_pair_workflows_do() -> None:
    # Sandboxed, the floor's worker pays a cost per payload that ours does not, and the
    # worker's ratio to it would flatter us (README, "Why the floor doubled").
    definitions = [
        workflow._Definition.must_from_class(cls)
        for cls in (BenchmarkFloor, LegacyContactPairing, VeraidContactPairing)
    ]
    assert len({definition.sandboxed for definition in definitions}) == 1


async def test_a_pair_completes_when_both_requests_are_in_and_not_before(
    temporal: TemporalDevServer, temporal_client: Client, tmp_path: Path
) -> None:
    task_queue = f"floor-{uuid.uuid4()}"
    log_file = tmp_path / "floor-worker.log"
    floor_worker = ChildProcess(
        "floor-worker",
        python_module(
            "benchmarks.floor", "--address", temporal.address, "--task-queue", task_queue
        ),
        env={},
        log_file=log_file,
    )
    floor_worker.start()
    try:
        await wait_for_poller(temporal.address, task_queue, floor_worker)
        complete, half = f"floor-complete-{uuid.uuid4()}", f"floor-half-{uuid.uuid4()}"
        sent_at = time.time()
        for workflow_id, requests in ((complete, REQUESTS_PER_PAIR), (half, 1)):
            for requester in range(requests):
                await temporal_client.start_workflow(
                    FLOOR_WORKFLOW,
                    id=workflow_id,
                    task_queue=task_queue,
                    start_signal=FLOOR_SIGNAL,
                    start_signal_args=[f"requester-{requester}"],
                )
        result = await temporal_client.get_workflow_handle(complete).result()
        assert result == REQUESTS_PER_PAIR
        completions = await _completions(log_file, until=complete)
        assert list(completions) == [complete]  # once, and the half pair not at all
        assert sent_at <= completions[complete] <= time.time()
        half_pair = temporal_client.get_workflow_handle(half)
        assert (await half_pair.describe()).close_time is None
        await half_pair.terminate(reason="test over")
    finally:
        floor_worker.stop()


async def _completions(log_file: Path, *, until: str) -> dict[str, float]:
    """The completions in the worker's log, once ``until`` is among them."""
    deadline = time.monotonic() + COMPLETION_TIMEOUT
    while True:
        log = await asyncio.to_thread(log_file.read_text)
        parsed = [parse_completion(line) for line in log.splitlines()]
        completions = [item for item in parsed if item is not None]
        if any(workflow_id == until for workflow_id, _ in completions):
            assert len(completions) == len({workflow_id for workflow_id, _ in completions})
            return dict(completions)
        assert time.monotonic() < deadline, f"no completion line for {until}"
        await asyncio.sleep(0.1)
