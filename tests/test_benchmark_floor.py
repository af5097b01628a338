"""The pairing benchmark's floor (``benchmarks.floor``): a pair completes once both requests
are in, its worker says so on standard output, and it runs as the pair workflows do."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack
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
from benchmarks.stack import Stack, start_floor_worker
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
    # Started as the benchmark starts it; the floor needs Temporal only, no ingress.
    stack = Stack(ingress_url="", temporal_address=temporal.address, work_dir=tmp_path)
    async with AsyncExitStack() as exits:
        await start_floor_worker(exits, stack, task_queue)
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
        completions = await _completions(tmp_path / "floor-worker.log", until=complete)
        assert [workflow_id for workflow_id, _ in completions] == [complete]  # once; half: none
        assert sent_at <= completions[0][1] <= time.time()
        half_pair = temporal_client.get_workflow_handle(half)
        assert (await half_pair.describe()).close_time is None
        await half_pair.terminate(reason="test over")


async def _completions(log_file: Path, *, until: str) -> list[tuple[str, float]]:
    """The completions in the worker's log, once ``until`` is among them."""
    deadline = time.monotonic() + COMPLETION_TIMEOUT
    while True:
        log = await asyncio.to_thread(log_file.read_text)
        parsed = [parse_completion(line) for line in log.splitlines()]
        completions = [item for item in parsed if item is not None]
        if any(workflow_id == until for workflow_id, _ in completions):
            return completions
        assert time.monotonic() < deadline, f"no completion line for {until}"
        await asyncio.sleep(0.1)
