"""The phases: the floor's bare signal-with-starts, and pairs driven through the ingress.

Each phase is bounded by ``--phase-timeout`` and measures the CPU of every component from its
first request to its last match; a pairing phase then waits ``--grace`` for late duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

from benchmarks.cpu import CpuSnapshot, ms_per_item, snapshot, usage_percent
from benchmarks.floor import (
    FLOOR_SIGNAL,
    FLOOR_WORKFLOW,
    IO_FLOOR_CONTENT_TYPE,
    IO_FLOOR_WORKFLOW,
    REQUESTS_PER_PAIR,
    parse_completion,
)
from benchmarks.pairing.figures import (
    FloorFigures,
    PairingFigures,
    pairing_figures,
    rate,
)
from benchmarks.pairing.load_generator import (
    PairingClient,
    PairOutcome,
    at_rate,
    bounded,
    in_lanes,
    open_client,
    wait_for_matches,
)
from benchmarks.pairing.match_recorder import MatchRecorder
from benchmarks.pairing.temporal_work import temporal_work
from benchmarks.pairing.workload import Arrival, Workload
from benchmarks.pairing_protocols import Pair
from benchmarks.replies import Correctness
from benchmarks.stack import Stack

# Open loop: a pool this big never makes an arrival wait for a connection at the rates the
# stack can sustain, so the generator does not hide queueing from the figures.
OPEN_LOOP_POOL = 256
FLOOR_POLL_INTERVAL = 0.25
FLOOR_RPC_TIMEOUT = timedelta(seconds=10)
OK = "ok"


class FloorLog:
    """Reads the floor worker's output as it grows, one complete line at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0

    def new_completions(self) -> list[tuple[str, float]]:
        with self._path.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a half-written line waits for the next read
        self._offset += len(complete)
        lines = complete.decode(errors="replace").splitlines()
        return [found for line in lines if (found := parse_completion(line)) is not None]


@dataclass
class Bench:
    """What every phase needs: settings, requests, the stack, the sink and the CPU accounting."""

    args: argparse.Namespace
    workload: Workload
    stack: Stack
    recorder: MatchRecorder
    temporal: Client
    floor_task_queue: str
    floor_log: FloorLog
    components: dict[str, list[int]]

    def cpu(self) -> CpuSnapshot:
        return snapshot(self.components)

    def deadline(self) -> float:
        timeout: float = self.args.phase_timeout
        return time.monotonic() + timeout


async def pairing_phase(
    bench: Bench,
    phase: str,
    pairs: Sequence[Pair],
    arrival: Arrival,
    *,
    rate_per_s: float | None = None,
) -> PairingFigures:
    """Drive ``pairs`` as ``arrival`` says (the open loop at ``rate_per_s``) and measure."""
    args = bench.args
    deadline = bench.deadline()
    started_at = datetime.now(UTC)
    before = bench.cpu()
    lag: float | None = None
    async with AsyncExitStack() as clients:
        if arrival is Arrival.OPEN:
            if rate_per_s is None:
                raise ValueError("the open loop needs a rate")
            lanes = [await _pairing_client(bench, clients, OPEN_LOOP_POOL)]
            outcomes, lag = await at_rate(lanes[0], pairs, rate_per_s, deadline, args.seed)
        else:
            # Simultaneous arrival needs two connections per lane, or the client would queue
            # the second request of a pair behind the first.
            together = arrival is Arrival.SIMULTANEOUS
            pool = 2 if together else 1
            lanes = [await _pairing_client(bench, clients, pool) for _ in range(args.concurrency)]
            drivers: list[Callable[[Pair], Awaitable[PairOutcome]]] = [
                lane.drive_together if together else lane.drive for lane in lanes
            ]
            if arrival is Arrival.CLOSED and args.max_outstanding:
                outstanding = asyncio.Semaphore(args.max_outstanding)
                drivers = [bounded(drive, outstanding, deadline) for drive in drivers]
            outcomes = await in_lanes(pairs, deadline, drivers)
    await wait_for_matches(outcomes, min(deadline, time.monotonic() + args.match_timeout))
    after = bench.cpu()
    # Late duplicates would come soon after the last match; wait a little for them.
    await asyncio.sleep(args.grace)
    figures = pairing_figures(
        phase, arrival, pairs, outcomes, bench.recorder, (before, after),
        concurrency=None if arrival is Arrival.OPEN else args.concurrency,
        max_outstanding=args.max_outstanding if arrival is Arrival.CLOSED else None,
        offered=rate_per_s, lag=lag, retries=sum(lane.transport_retries for lane in lanes),
    )  # fmt: skip
    # Outside the measured interval: reading histories costs the server CPU.
    workflow_type = bench.workload.protocol.workflow_type
    figures.temporal_work = await temporal_work(bench.temporal, workflow_type, started_at)
    return figures


async def _pairing_client(bench: Bench, clients: AsyncExitStack, pool: int) -> PairingClient:
    content_type = bench.workload.protocol.request_content_type
    return await open_client(clients, pool, bench.stack.ingress_url, bench.recorder, content_type)


async def floor_phase(
    bench: Bench, prefix: str, count: int, workflow_type: str = FLOOR_WORKFLOW
) -> FloorFigures:
    """Signal-with-starts, two per pair, of a floor workflow (the bare one by default)."""
    deadline = bench.deadline()
    before = bench.cpu()
    started_at = datetime.now(UTC)
    started = time.monotonic()

    async def drive(index: int) -> tuple[str, str]:
        workflow_id = f"{prefix}-{index}"
        first = await _signal_with_start(bench, workflow_type, workflow_id, "first")
        return first, await _signal_with_start(bench, workflow_type, workflow_id, "second")

    statuses = await in_lanes(range(count), deadline, [drive] * bench.args.concurrency)
    sent_seconds = time.monotonic() - started
    completed, last_close = await _wait_for_floor(bench, prefix, count, deadline)
    after = bench.cpu()
    seconds = (last_close - started_at).total_seconds() if last_close else 0.0
    accepted = sum(pair.count(OK) for pair in statuses)
    failures = Counter(s for pair in statuses for s in pair if s != OK)
    failures["not sent"] = count - len(statuses)
    replies = None
    if workflow_type == IO_FLOOR_WORKFLOW:
        # A pair completes only once its replies were taken, so all of them are in by now.
        taken = bench.recorder.take_unexpected(IO_FLOOR_CONTENT_TYPE)
        replies = taken.get(IO_FLOOR_CONTENT_TYPE, 0)
        failures["replies missing or doubled"] = abs(replies - REQUESTS_PER_PAIR * completed)
    return FloorFigures(
        workflow=workflow_type,
        pairs=count,
        concurrency=bench.args.concurrency,
        signal_with_starts_accepted=accepted,
        accepted_per_s=rate(accepted, sent_seconds),
        pairs_completed=completed,
        completed_pairs_per_s=rate(completed, seconds),
        seconds=round(seconds, 2),
        failures={name: n for name, n in failures.items() if n},
        cpu_percent={name: round(v) for name, v in usage_percent(before, after).items()},
        cpu_ms_per_pair=ms_per_item(before, after, completed),
        replies_received=replies,
    )


async def _signal_with_start(
    bench: Bench, workflow_type: str, workflow_id: str, requester: str
) -> str:
    try:
        await bench.temporal.start_workflow(
            workflow_type,
            id=workflow_id,
            task_queue=bench.floor_task_queue,
            start_signal=FLOOR_SIGNAL,
            start_signal_args=[requester],
            rpc_timeout=FLOOR_RPC_TIMEOUT,
        )
    except RPCError as error:
        return f"error:{error.status.name}"
    return OK


async def _wait_for_floor(
    bench: Bench, prefix: str, count: int, deadline: float
) -> tuple[int, datetime | None]:
    """Follow the floor worker's output until ``count`` pairs completed; return the last time."""
    completed: dict[str, float] = {}
    while True:
        for workflow_id, at in bench.floor_log.new_completions():
            if workflow_id.startswith(f"{prefix}-"):
                completed.setdefault(workflow_id, at)
        if len(completed) >= count or time.monotonic() > deadline:
            break
        await asyncio.sleep(FLOOR_POLL_INTERVAL)
    last = max(completed.values(), default=None)
    return len(completed), None if last is None else datetime.fromtimestamp(last, UTC)


async def warm_up(bench: Bench) -> Correctness:
    """Open connections, load code and fill caches before anything is measured."""
    floors = [FLOOR_WORKFLOW] + ([IO_FLOOR_WORKFLOW] if bench.stack.has_io_floor else [])
    for workflow_type in floors:
        prefix = f"benchmark-{workflow_type}-warmup-{bench.workload.run_id}"
        floor = await floor_phase(bench, prefix, bench.args.warmup, workflow_type)
        if floor.failures:
            raise RuntimeError(f"{workflow_type} warm-up failed: {floor.failures}")
    warmup = await pairing_phase(bench, "warmup", bench.workload.warmup, Arrival.CLOSED)
    return warmup.correctness
