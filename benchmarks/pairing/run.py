"""The run: the stack started, the phases in order, their figures gathered in a ``Report``.

Everything started is registered on one exit stack, so it is stopped at the end, on error
and on Ctrl-C alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from benchmarks.floor import IO_FLOOR_WORKFLOW
from benchmarks.pairing.figures import FloorFigures, PairingFigures
from benchmarks.pairing.match_recorder import MatchRecorder
from benchmarks.pairing.phases import Bench, FloorLog, floor_phase, pairing_phase, warm_up
from benchmarks.pairing.workload import Arrival, Workload
from benchmarks.pairing_protocols import VerificationFigures
from benchmarks.replies import Correctness
from benchmarks.stack import Stack, serve_sink, start_floor_worker, start_local_stack
from infra.services import free_port


@dataclass
class Report:
    started: str
    cpus: int
    stack: str
    protocol: str
    # What was sent, and how long making it took (before anything was measured).
    material: str
    preparation_seconds: float
    ratio_target: float
    p99_target_ms: float | None
    load_average_before: tuple[float, float, float]
    load_average_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    verification: VerificationFigures | None = None
    warmup: Correctness | None = None
    floor: FloorFigures | None = None
    io_floor: FloorFigures | None = None
    closed_loop: PairingFigures | None = None
    simultaneous: PairingFigures | None = None
    open_loop: PairingFigures | None = None
    # Issue 17's target: our worker's CPU per pair at most this many times the floor worker's.
    worker_cpu_target: float = 1.5

    @property
    def ratio_to_floor(self) -> float | None:
        return _rate_ratio(self.closed_loop, self.floor)

    @property
    def ratio_to_io_floor(self) -> float | None:
        return _rate_ratio(self.closed_loop, self.io_floor)

    @property
    def worker_to_floor_worker(self) -> float | None:
        """The closed loop's worker CPU per pair over the floor worker's, in the floor phase."""
        return _worker_ratio(self.closed_loop, self.floor)

    @property
    def worker_to_io_floor_worker(self) -> float | None:
        return _worker_ratio(self.closed_loop, self.io_floor)

    @property
    def acceptance_ratio(self) -> float | None:
        """Our accepted requests/s over the floor's accepted signal-with-starts/s."""
        if not (self.floor and self.closed_loop and self.floor.accepted_per_s):
            return None
        return round(self.closed_loop.accepted_per_s / self.floor.accepted_per_s, 2)

    @property
    def verification_core_share(self) -> float | None:
        """Share of one core verifying the closed loop's requests needs, with a warm cache."""
        if not (self.verification and self.closed_loop):
            return None
        return self.verification.core_share(self.closed_loop.matched_pairs_per_s)

    @property
    def ok(self) -> bool:
        phases = (self.closed_loop, self.simultaneous, self.open_loop)
        checks = [self.warmup] + [p.correctness for p in phases if p]
        floor_ok = self.floor is not None and not self.floor.failures
        io_floor_ok = self.io_floor is None or not self.io_floor.failures
        return floor_ok and io_floor_ok and all(c is not None and c.ok for c in checks)


def _rate_ratio(closed: PairingFigures | None, floor: FloorFigures | None) -> float | None:
    if not (floor and closed and floor.completed_pairs_per_s):
        return None
    return round(closed.matched_pairs_per_s / floor.completed_pairs_per_s, 2)


def _worker_ratio(closed: PairingFigures | None, floor: FloorFigures | None) -> float | None:
    ours = closed.cpu_ms_per_pair.get("worker") if closed else None
    floors = floor.cpu_ms_per_pair.get("floor-worker") if floor else None
    if not (ours and floors):
        return None
    return round(ours / floors, 1)


async def run(args: argparse.Namespace, workload: Workload, report: Report) -> None:
    async with AsyncExitStack() as exits:
        work_dir = args.work_dir or Path(
            exits.enter_context(tempfile.TemporaryDirectory(prefix="letro-benchmark-"))
        )
        recorder = MatchRecorder(workload.protocol.match_content_type)
        sink_url = await serve_sink(exits, recorder, args.sink_port or free_port())
        if args.ingress_url:
            stack = Stack(args.ingress_url, args.temporal_address, work_dir)
        else:
            env = workload.protocol.service_env()
            stack = await start_local_stack(exits, work_dir, sink_url, env, args.workers)
        floor_queue = f"benchmark-floor-{workload.run_id}"
        floor_worker = await start_floor_worker(exits, stack, floor_queue)
        components = {
            **stack.components,
            "floor-worker": [floor_worker.pid],
            "benchmark": [os.getpid()],
        }
        temporal = await Client.connect(stack.temporal_address)
        floor_log = FloorLog(floor_worker.log_file or work_dir / "floor-worker.log")
        bench = Bench(args, workload, stack, recorder, temporal, floor_queue, floor_log, components)
        await _run_phases(bench, report)


async def _run_phases(bench: Bench, report: Report) -> None:
    args, workload = bench.args, bench.workload
    report.warmup = await warm_up(bench)
    progress("warm-up done; floor phase")
    floor_prefix = f"benchmark-floor-{workload.run_id}"
    report.floor = await floor_phase(bench, floor_prefix, args.pairs)
    progress(f"floor: {report.floor.completed_pairs_per_s} pairs/s")
    if bench.stack.has_io_floor:
        progress("floor-with-I/O phase")
        io_prefix = f"benchmark-floor-io-{workload.run_id}"
        report.io_floor = await floor_phase(bench, io_prefix, args.pairs, IO_FLOOR_WORKFLOW)
        progress(f"floor with I/O: {report.io_floor.completed_pairs_per_s} pairs/s")
    progress("closed-loop phase")
    report.closed_loop = await pairing_phase(bench, "closed", workload.closed, Arrival.CLOSED)
    progress(f"closed loop: {report.closed_loop.matched_pairs_per_s} pairs/s")
    if workload.simultaneous:
        progress("simultaneous-arrival phase")
        report.simultaneous = await pairing_phase(
            bench, "simultaneous", workload.simultaneous, Arrival.SIMULTANEOUS
        )
        progress(f"simultaneous arrival: {report.simultaneous.matched_pairs_per_s} pairs/s")
    offered = args.rate or report.floor.completed_pairs_per_s / 2
    if offered <= 0:
        return
    progress("open-loop phase")
    report.open_loop = await pairing_phase(
        bench, "open", workload.open, Arrival.OPEN, rate_per_s=offered
    )


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
