"""The options every module benchmark shares, and ``run_benchmark``, which each ``main`` calls."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.exchanges.output import print_report, report_json
from benchmarks.exchanges.run import Report, run
from benchmarks.exchanges.workload import Module, prepare
from benchmarks.pairing.command_line import positive_int
from benchmarks.pairing.run import progress


def add_common_options(parser: argparse.ArgumentParser, *, concurrency: int) -> None:
    add = parser.add_argument
    add("--concurrency", type=positive_int, default=concurrency, help="lanes (users) at once")
    add("--workers", type=positive_int, default=1, help="worker processes of the stack")
    add(
        "--seconds",
        type=float,
        help="stop sending after this long (default: when every prepared request is sent)",
    )
    add("--warmup", type=positive_int, default=3, help="warm-up exchanges per module")
    add("--phase-timeout", type=float, default=300.0, help="bound on each phase, seconds")
    add("--reply-timeout", type=float, default=60.0, help="a lane waits this long for replies")
    add("--grace", type=float, default=2.0, help="wait for late duplicates, seconds")
    add("--seed", type=int, default=1, help="seed of the order the exchanges are sent in")
    add("--json", action="store_true", help="print the report as JSON")
    add("--work-dir", type=Path, help="keep the stack's data and logs here (default: temporary)")


def run_benchmark(
    args: argparse.Namespace,
    *,
    benchmark: str,
    title: str,
    make_modules: Callable[[argparse.Namespace], Sequence[Module]],
    counts: Callable[[Sequence[Module]], Mapping[str, int]],
) -> int:
    """Make the modules and every request, run the stack, print the report; the exit status.

    0 when every request was accepted and every reply came exactly once (and right), with
    nothing else reaching the sink; 1 otherwise; 130 on Ctrl-C.
    """
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_average_before = os.getloadavg()
    # SIGTERM ends the run as Ctrl-C does, so the stack is stopped either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        progress("making the requests")
        began = time.monotonic()
        # Key pools are made on every core, before any thread or event loop starts.
        modules = make_modules(args)
        prepared = dict(counts(modules))
        workload = prepare(modules, args.warmup, prepared, args.seed)
        report = Report(
            benchmark=benchmark,
            started=started,
            cpus=os.cpu_count() or 0,
            stack="self-contained: Temporal dev server (SQLite file, WAL, synchronous=normal),"
            f" mongod, {args.workers} worker(s), 1 ingress, in-process sink",
            concurrency=args.concurrency,
            material={module.name: module.material for module in modules},
            preparation_seconds=round(time.monotonic() - began, 1),
            prepared=prepared,
            seconds=args.seconds,
            load_average_before=load_average_before,
        )
        progress(f"made {workload.messages} requests in {report.preparation_seconds} s")
        asyncio.run(run(args, modules, workload, report))
    except KeyboardInterrupt:
        print(f"{benchmark}: interrupted; stack stopped", file=sys.stderr)
        return 130
    report.load_average_after = os.getloadavg()
    if args.json:
        print(report_json(report))
    else:
        print_report(report, title)
    return 0 if report.ok else 1
