"""The pairing benchmark's floors (``benchmarks.floor``): a pair completes once both requests
are in, its worker says so on standard output, and it runs as the pair workflows do; the floor
with I/O stores a request that waits alone, and at the match deletes it and sends two replies."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from temporalio import workflow
from temporalio.client import Client

from benchmarks.floor import (
    FLOOR_SIGNAL,
    FLOOR_WORKFLOW,
    IO_FLOOR_COLLECTION,
    IO_FLOOR_CONTENT_TYPE,
    IO_FLOOR_DATABASE,
    IO_FLOOR_WORKFLOW,
    REQUESTS_PER_PAIR,
    BenchmarkFloor,
    BenchmarkFloorWithIO,
    parse_completion,
)
from benchmarks.stack import Stack, start_floor_worker
from infra.services import MongoDB, TemporalDevServer
from infra.sink import ReceivedEvent
from tests.conftest import serve_sink
from workflows.legacy_pairing import LegacyContactPairing
from workflows.veraid_pairing import VeraidContactPairing

# A pair's completion takes a few workflow tasks; this bounds a broken floor's wait.
COMPLETION_TIMEOUT = 20.0


def test_the_floor_runs_in_or_out_of_the_sandbox_as_the_pair_workflows_do() -> None:
    # Sandboxed, the floor's worker pays a cost per payload that ours does not, and the
    # worker's ratio to it would flatter us (README, "Why the floor doubled").
    definitions = [
        workflow._Definition.must_from_class(cls)
        for cls in (
            BenchmarkFloor,
            BenchmarkFloorWithIO,
            LegacyContactPairing,
            VeraidContactPairing,
        )
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


async def test_the_floor_with_io_stores_a_lone_request_and_replies_to_both_at_the_match(
    temporal: TemporalDevServer,
    temporal_client: Client,
    mongodb: MongoDB,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    tmp_path: Path,
) -> None:
    task_queue = f"floor-io-{uuid.uuid4()}"
    stored = mongo_client[IO_FLOOR_DATABASE][IO_FLOOR_COLLECTION]
    async with serve_sink() as sink, AsyncExitStack() as exits:
        stack = Stack(
            ingress_url="",
            temporal_address=temporal.address,
            work_dir=tmp_path,
            mongodb_uri=mongodb.uri,
            sink_url=sink.url,
        )
        await start_floor_worker(exits, stack, task_queue)
        pair = f"floor-io-{uuid.uuid4()}"

        async def request(requester: str) -> None:
            await temporal_client.start_workflow(
                IO_FLOOR_WORKFLOW,
                id=pair,
                task_queue=task_queue,
                start_signal=FLOOR_SIGNAL,
                start_signal_args=[requester],
            )

        await request("first")
        deadline = time.monotonic() + COMPLETION_TIMEOUT
        while await stored.find_one({"_id": pair}) is None:
            assert time.monotonic() < deadline, "the waiting request was never stored"
            await asyncio.sleep(0.1)
        assert _replies(sink.recorder.events, pair) == []
        await request("second")
        assert await temporal_client.get_workflow_handle(pair).result() == REQUESTS_PER_PAIR
        # Both replies went out before the pair completed, and its document is gone.
        assert _replies(sink.recorder.events, pair) == [f"{pair}-side-0", f"{pair}-side-1"]
        assert await stored.find_one({"_id": pair}) is None
        completions = await _completions(tmp_path / "floor-worker.log", until=pair)
        assert [workflow_id for workflow_id, _ in completions] == [pair]


def _replies(events: Sequence[ReceivedEvent], pair: str) -> list[str]:
    """The recipients of the floor's replies for ``pair``, sorted."""
    return sorted(
        event.subject
        for event in events
        if event.content_type == IO_FLOOR_CONTENT_TYPE and event.event_id.startswith(pair)
    )


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
