"""The command line: the options, and ``main``, which every entry point calls.

``python -m benchmarks.pairing`` takes ``--protocol``; ``benchmarks.legacy_pairing`` and
``benchmarks.veraid_pairing`` call ``main`` with the protocol set and their own name.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.pairing.output import print_report, report_json
from benchmarks.pairing.run import Report, progress, run
from benchmarks.pairing.workload import prepare
from benchmarks.pairing_protocols import PROTOCOL_NAMES, LegacyPairing, VeraidPairing
from benchmarks.stack import is_loopback


def parse_args(
    argv: Sequence[str] | None = None,
    *,
    default_protocol: str = LegacyPairing.name,
    prog: str = "python -m benchmarks.pairing",
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Measure contact pairing through the real stack against the floor.",
    )
    add = parser.add_argument
    add("--protocol", choices=PROTOCOL_NAMES, default=default_protocol, help="what pairs send")
    add("--pairs", type=positive_int, default=2000, help="pairs per measured phase")
    add("--concurrency", type=positive_int, default=64, help="pairs in flight (closed loop)")
    add("--workers", type=positive_int, default=1, help="worker processes of the stack")
    add(
        "--max-outstanding",
        type=positive_int,
        help="closed loop: at most N pairs accepted but not matched yet, so that its latency"
        " is service time (default: unbounded, and its latency is mostly backlog)",
    )
    add(
        "--simultaneous-pairs",
        type=_non_negative_int,
        default=200,
        help="pairs whose two requests are sent at once (0 skips that phase)",
    )
    add("--rate", type=float, help="open-loop arrivals, pairs/s (default: half the floor)")
    add(
        "--open-pairs",
        type=positive_int,
        default=2000,
        help="open-loop pairs; 2000 makes its p99 rest on the slowest 20",
    )
    add("--warmup", type=positive_int, default=20, help="warm-up pairs, not reported")
    add("--phase-timeout", type=float, default=300.0, help="bound on each phase, seconds")
    add("--match-timeout", type=float, default=60.0, help="wait for matches after sending")
    add("--grace", type=float, default=2.0, help="wait for late duplicates, seconds")
    add("--seed", type=int, default=1, help="seed of the open-loop arrivals")
    add(
        "--endpoint-keys",
        type=_at_least_two,
        default=64,
        help="VeraId: RSA-2048 Awala endpoint keys the users share (made before the run)",
    )
    add(
        "--verify-seconds",
        type=float,
        default=2.0,
        help="VeraId: measure verification this long, warm and cold (before the stack starts)",
    )
    add("--json", action="store_true", help="print the report as JSON")
    add("--work-dir", type=Path, help="keep the stack's data and logs here (default: temporary)")
    add("--ingress-url", help="use this running ingress instead of starting a stack")
    add("--temporal-address", help="its Temporal server, host:port (with --ingress-url)")
    add("--sink-port", type=int, help="serve the sink on this port (where its worker posts)")
    args = parser.parse_args(argv)
    external = (args.ingress_url, args.temporal_address, args.sink_port)
    if any(external) and not all(external):
        parser.error("--ingress-url, --temporal-address and --sink-port go together")
    if args.ingress_url and not (
        is_loopback(urlsplit(args.ingress_url).hostname)
        and is_loopback(args.temporal_address.rsplit(":", 1)[0])
    ):
        parser.error("only targets on 127.0.0.1 are allowed")
    if args.ingress_url and args.protocol == VeraidPairing.name:
        # Each run makes a new mock DNSSEC chain, which an ingress started elsewhere would not
        # trust: every request would be refused.
        parser.error("--protocol veraid needs its own stack, whose ingress trusts the mock chain")
    return args


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _at_least_two(text: str) -> int:
    return _int_at_least(text, 2)


def _int_at_least(text: str, minimum: int) -> int:
    value = int(text)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text} is less than {minimum}")
    return value


def main(
    argv: Sequence[str] | None = None,
    *,
    default_protocol: str = LegacyPairing.name,
    prog: str = "python -m benchmarks.pairing",
) -> int:
    args = parse_args(argv, default_protocol=default_protocol, prog=prog)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    # Before preparing, which loads every core for a while with VeraId.
    load_average_before = os.getloadavg()
    # SIGTERM ends the run as Ctrl-C does, so the stack is stopped either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        progress(f"making the {args.protocol} requests")
        began = time.monotonic()
        workload = prepare(args)
        protocol = workload.protocol
        report = Report(
            started=started,
            cpus=os.cpu_count() or 0,
            stack=(
                f"running stack at {args.ingress_url}"
                if args.ingress_url
                else "self-contained: Temporal dev server (SQLite file, WAL, synchronous=normal),"
                f" mongod, {args.workers} worker(s), 1 ingress, in-process sink"
            ),
            protocol=protocol.name,
            material=protocol.material,
            preparation_seconds=round(time.monotonic() - began, 1),
            ratio_target=protocol.ratio_target,
            p99_target_ms=protocol.p99_target_ms,
            load_average_before=load_average_before,
        )
        progress(f"made {workload.requests} requests in {report.preparation_seconds} s")
        report.verification = protocol.measure_verification(workload.closed, args.verify_seconds)
        if report.verification:
            progress(
                f"verification: {report.verification.warm_per_cpu_second} per CPU second warm,"
                f" {report.verification.cold_per_cpu_second} cold"
            )
        asyncio.run(run(args, workload, report))
    except KeyboardInterrupt:
        print("benchmark: interrupted; stack stopped", file=sys.stderr)
        return 130
    report.load_average_after = os.getloadavg()
    if args.json:
        print(report_json(report))
    else:
        print_report(report, protocol.title)
    return 0 if report.ok else 1
