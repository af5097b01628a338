"""The run: the modules' servers and the stack started, a warm-up, then the measured phase.

Everything started is registered on one exit stack, so it is stopped at the end, on error
and on Ctrl-C alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cpu import CpuSnapshot, snapshot
from benchmarks.exchanges.driver import closed_loop
from benchmarks.exchanges.figures import PhaseFigures, PhaseRecord, phase_figures
from benchmarks.exchanges.workload import Exchange, Module, Workload
from benchmarks.pairing.run import progress
from benchmarks.replies import ReplyRecorder
from benchmarks.stack import Stack, serve_sink, start_local_stack
from infra.services import free_port


@dataclass
class Report:
    benchmark: str
    started: str
    cpus: int
    stack: str
    concurrency: int
    # What each module sends, and how long making every request took (before the stack).
    material: dict[str, str]
    preparation_seconds: float
    # Measured exchanges prepared per module, and the phase's bound in seconds if it has one.
    prepared: dict[str, int]
    seconds: float | None
    load_average_before: tuple[float, float, float]
    load_average_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    warmup: PhaseFigures | None = None
    measured: PhaseFigures | None = None

    @property
    def ok(self) -> bool:
        phases = (self.warmup, self.measured)
        return all(phase is not None and phase.ok for phase in phases)


@dataclass
class Bench:
    args: argparse.Namespace
    modules: Sequence[Module]
    stack: Stack
    recorder: ReplyRecorder
    components: dict[str, list[int]]

    def cpu(self) -> CpuSnapshot:
        return snapshot(self.components)

    async def counters(self) -> dict[str, dict[str, int]]:
        return {module.name: await module.counters() for module in self.modules}


async def run(
    args: argparse.Namespace, modules: Sequence[Module], workload: Workload, report: Report
) -> None:
    async with AsyncExitStack() as exits:
        work_dir = args.work_dir or Path(
            exits.enter_context(tempfile.TemporaryDirectory(prefix="letro-benchmark-"))
        )
        work_dir.mkdir(parents=True, exist_ok=True)
        recorder = ReplyRecorder()
        sink_url = await serve_sink(exits, recorder, free_port())
        for module in modules:
            await module.start(exits, work_dir)
        env = {name: value for module in modules for name, value in module.service_env().items()}
        stack = await start_local_stack(exits, work_dir, sink_url, env, args.workers)
        components = {
            **stack.components,
            **{name: pids for module in modules for name, pids in module.components().items()},
            "benchmark": [os.getpid()],
        }
        bench = Bench(args, modules, stack, recorder, components)
        progress(f"stack up; warm-up ({len(workload.warmup)} exchanges)")
        report.warmup = await measure(bench, workload.warmup, seconds=None)
        progress(f"warm-up {'ok' if report.warmup.ok else 'FAILED'}; measured phase")
        report.measured = await measure(bench, workload.measured, seconds=args.seconds)
        progress(f"measured phase done in {report.measured.seconds} s")


async def measure(
    bench: Bench, exchanges: Sequence[Exchange], *, seconds: float | None
) -> PhaseFigures:
    """Drive ``exchanges``: all of them, or as many as ``seconds`` allows when it is set."""
    args = bench.args
    stop_at = time.monotonic() + (seconds if seconds is not None else args.phase_timeout)
    counters_before = await bench.counters()
    cpu_before = bench.cpu()
    outcomes, retries = await closed_loop(
        exchanges,
        url=bench.stack.ingress_url,
        recorder=bench.recorder,
        concurrency=args.concurrency,
        stop_at=stop_at,
        reply_timeout=args.reply_timeout,
    )
    cpu_after = bench.cpu()
    counters_after = await bench.counters()
    # Late duplicates would come soon after the last reply; wait a little for them.
    await asyncio.sleep(args.grace)
    record = PhaseRecord(
        exchanges=exchanges,
        outcomes=outcomes,
        must_send_all=seconds is None,
        cpu=(cpu_before, cpu_after),
        counters=(counters_before, counters_after),
        transport_retries=retries,
    )
    return phase_figures(record, bench.modules, bench.recorder)
