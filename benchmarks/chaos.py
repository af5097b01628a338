"""Every module under load while components are killed and restarted, then the count.

    python -m benchmarks.chaos [--seconds 60] [--interval 5] [--outage 2] [--json]

Drives a mixed load (VeraId and legacy pairs, VeraId refusals, pairing authorisations,
account requests, connection-params requests: ``benchmarks.chaos_stack``) through a real
stack started here, for ``--seconds``. Every ``--interval`` seconds one component, picked
at random (``--seed``), is killed -- the worker, the ingress, the Temporal server and
mongod with SIGKILL, the sink by closing its port -- and ``--outage`` seconds later
restarted on the same port and data. The sender acts as a broker: it posts each message
under one parcel id until the ingress answers 2xx.

Then it waits for quiescence (every accepted request's replies, or ``--quiesce-timeout``)
and counts. Printed: each kill, and per component how long it took to recover, from its
restart to the first success it allows (for the ingress and Temporal: a request accepted;
for the worker, mongod and the sink: a reply delivered). The last line is exactly
``accepted A, delivered D, lost L, duplicated X``: A messages accepted, D of the replies
they are owed delivered, L never delivered, X delivered twice under different event ids
(or not owed at all). The exit status is 0 only if L and X are both 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.chaos_stack import (
    MODULE_NAMES,
    Flight,
    RestartableStack,
    Sender,
    Tally,
    await_replies,
    fly,
    make_modules,
    modules_env,
    open_sender,
    quiesce,
    start_restartable_stack,
    tally,
)
from benchmarks.pairing.command_line import positive_int
from benchmarks.pairing.run import progress
from benchmarks.replies import ReplyRecorder
from infra.services import free_port
from infra.sink import SinkServer

COMPONENTS = ("worker", "ingress", "temporal", "mongod", "sink")
# What "recovered" means for each: the first request accepted, or the first reply delivered.
_RECOVERED_BY = {
    "worker": "reply",
    "ingress": "accepted",
    "temporal": "accepted",
    "mongod": "reply",
    "sink": "reply",
}


@dataclass
class Kill:
    component: str
    killed_at: float  # seconds since the load started
    restarted_at: float  # the restart began (process spawned, port reopened)
    ready_at: float  # the restart returned: the component answers its readiness probe
    recovery_seconds: float | None = None  # None: nothing succeeded after the restart


@dataclass
class Report:
    seconds: float
    interval: float
    outage: float
    exchanges_sent: int
    kills: list[Kill] = field(default_factory=list)
    recovery: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)
    quiesce_seconds: float = 0.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chaos",
        description="Kill and restart components under a mixed load; count lost and doubled.",
    )
    add = parser.add_argument
    add("--seconds", type=float, default=60.0, help="how long to send and kill")
    add("--interval", type=float, default=5.0, help="seconds between two kills")
    add("--outage", type=float, default=2.0, help="seconds a killed component stays down")
    add("--concurrency", type=positive_int, default=16, help="exchanges in flight at most")
    add("--rate", type=float, default=3.0, help="exchanges started per second")
    add("--reply-timeout", type=float, default=60.0, help="a lane waits this long for replies")
    add("--quiesce-timeout", type=float, default=180.0, help="wait this long for stragglers")
    add("--grace", type=float, default=3.0, help="then this long for late duplicates")
    add("--seed", type=int, default=1, help="seed of the kills and of the exchanges' order")
    add("--components", default=",".join(COMPONENTS), help="which components to kill")
    add("--json", action="store_true", help="print the report as JSON (then the last line)")
    add("--work-dir", type=Path, help="keep the stack's data and logs here")
    args = parser.parse_args(argv)
    if min(args.seconds, args.interval, args.rate) <= 0 or args.outage < 0:
        parser.error("--seconds, --interval and --rate must be positive, --outage not negative")
    args.components = [name for name in args.components.split(",") if name]
    if not args.components or set(args.components) - set(COMPONENTS):
        parser.error(f"--components is a comma-separated list among {', '.join(COMPONENTS)}")
    return args


def _killers(stack: RestartableStack) -> dict[str, tuple[Callable[[], Awaitable[None]], ...]]:
    async def start_worker() -> None:
        await stack.start_worker()

    return {
        "worker": (stack.kill_workers, start_worker),
        "ingress": (stack.kill_ingress, stack.start_ingress),
        "temporal": (stack.kill_temporal, stack.start_temporal),
        "mongod": (stack.kill_mongod, stack.start_mongod),
        "sink": (stack.sink.stop, stack.sink.start),
    }


async def chaos(
    stack: RestartableStack, args: argparse.Namespace, began: float, stop_at: float
) -> list[Kill]:
    """Kill and restart a random component every ``--interval`` until ``stop_at``."""
    rng = random.Random(args.seed)
    killers = _killers(stack)
    kills: list[Kill] = []
    while time.monotonic() + args.interval < stop_at:
        await asyncio.sleep(args.interval)
        component = rng.choice(args.components)
        kill, restart = killers[component]
        killed_at = time.monotonic()
        await kill()
        await asyncio.sleep(args.outage)
        restarted_at = time.monotonic()
        await restart()
        ready_at = time.monotonic()
        progress(
            f"{component} killed at {killed_at - began:.1f} s, restarted"
            f" {restarted_at - killed_at:.1f} s later, ready in {ready_at - restarted_at:.1f} s"
        )
        kills.append(Kill(component, *(at - began for at in (killed_at, restarted_at, ready_at))))
    return kills


async def lanes(
    sender: Sender, flights: Sequence[Flight], args: argparse.Namespace, began: float
) -> list[Flight]:
    """``--concurrency`` lanes sending exchanges at ``--rate`` a second, each lane awaiting
    an exchange's replies before its next: an outage stalls at most that many exchanges."""
    pending = iter(enumerate(flights))
    sent: list[Flight] = []
    stop_at = began + args.seconds

    async def lane() -> None:
        for index, flight in pending:
            await asyncio.sleep(max(began + index / args.rate - time.monotonic(), 0.0))
            if time.monotonic() > stop_at:
                return
            sent.append(flight)
            await fly(sender, flight)
            if flight.accepted and flight.replies:
                await asyncio.wait(flight.replies, timeout=args.reply_timeout)

    await asyncio.gather(*(lane() for _ in range(args.concurrency)))
    return sent


def recoveries(kills: list[Kill], began: float, sender: Sender, recorder: ReplyRecorder) -> None:
    """Fill in each kill's recovery: from its restart to the first success after it."""
    successes = {
        "accepted": sorted(at - began for at in sender.accepted_at),
        "reply": sorted(event.received_at - began for event in recorder.events),
    }
    for kill in kills:
        after = [at for at in successes[_RECOVERED_BY[kill.component]] if at >= kill.restarted_at]
        kill.recovery_seconds = round(after[0] - kill.restarted_at, 2) if after else None


def recovery_figures(kills: list[Kill]) -> dict[str, dict[str, float | int | None]]:
    figures: dict[str, dict[str, float | int | None]] = {}
    for component in COMPONENTS:
        ours = [kill for kill in kills if kill.component == component]
        times = [kill.recovery_seconds for kill in ours if kill.recovery_seconds is not None]
        if not ours:
            continue
        figures[component] = {
            "kills": len(ours),
            "unrecovered": len(ours) - len(times),
            "median_seconds": round(statistics.median(times), 2) if times else None,
            "max_seconds": round(max(times), 2) if times else None,
        }
    return figures


async def run(args: argparse.Namespace) -> Report:
    async with AsyncExitStack() as exits:
        work_dir = args.work_dir or Path(
            exits.enter_context(tempfile.TemporaryDirectory(prefix="letro-chaos-"))
        )
        work_dir.mkdir(parents=True, exist_ok=True)
        modules = make_modules(MODULE_NAMES)
        per_module = math.ceil(args.seconds * args.rate / len(modules))
        exchanges = [e for module in modules for e in module.make("chaos", "m", per_module)]
        random.Random(args.seed).shuffle(exchanges)
        for module in modules:
            await module.start(exits, work_dir)
        recorder = ReplyRecorder()
        sink = SinkServer(recorder, free_port())
        await sink.start()
        exits.push_async_callback(sink.stop)
        stack = await start_restartable_stack(exits, work_dir, sink, modules_env(modules))
        progress(f"stack up in {work_dir}; {len(exchanges)} exchanges ready")
        flights = await_replies(exchanges, recorder)
        # The sender outlives the load: a message in flight at the end is still delivered.
        sender = open_sender(exits, stack.ingress_urls, args.seconds + args.quiesce_timeout)
        began = time.monotonic()
        stop_at = began + args.seconds
        sent, kills = await asyncio.gather(
            lanes(sender, flights, args, began), chaos(stack, args, began, stop_at)
        )
        progress(f"load over: {len(sent)} exchanges sent; waiting for quiescence")
        quiet_from = time.monotonic()
        await quiesce(sent, time.monotonic() + args.quiesce_timeout, args.grace)
        recoveries(kills, began, sender, recorder)
        report = Report(args.seconds, args.interval, args.outage, len(sent), kills)
        report.recovery = recovery_figures(kills)
        report.tally = tally(sent, modules, recorder)
        report.quiesce_seconds = round(time.monotonic() - quiet_from - args.grace, 1)
        return report


def print_text(report: Report) -> None:
    print(
        f"chaos: {report.seconds:g} s of mixed load, a kill every {report.interval:g} s"
        f" ({report.outage:g} s down), {report.exchanges_sent} exchanges sent"
    )
    for kill in report.kills:
        recovered = (
            f"recovered {kill.recovery_seconds:.2f} s after restart"
            if kill.recovery_seconds is not None
            else "no success after restart"
        )
        print(
            f"  {kill.killed_at:6.1f} s  {kill.component:<8} restarted at"
            f" {kill.restarted_at:6.1f} s (ready {kill.ready_at - kill.restarted_at:.1f} s"
            f" later), {recovered}"
        )
    print("recovery (restart to first success), per component:")
    for component, figures in report.recovery.items():
        print(
            f"  {component:<8} kills {figures['kills']}, median {figures['median_seconds']} s,"
            f" max {figures['max_seconds']} s, unrecovered {figures['unrecovered']}"
        )
    result = report.tally
    print(
        f"quiescent {report.quiesce_seconds} s after the load; replies owed {result.expected},"
        f" redelivered under the same id {result.redelivered}, refused {result.refused}"
    )
    if result.lost_by_module or result.duplicated_by_module or result.unexpected:
        print(
            f"lost by module {result.lost_by_module}, duplicated by module"
            f" {result.duplicated_by_module}, unexpected {result.unexpected}"
        )


def report_json(report: Report) -> str:
    body = asdict(report)
    # Per-recipient maps are long and say nothing a reader of the figures needs.
    for key in ("ids_per_recipient", "owed_per_recipient"):
        body["tally"].pop(key)
    return json.dumps(body, indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = asyncio.run(run(args))
    except KeyboardInterrupt:
        print("chaos: interrupted; stack stopped", file=sys.stderr)
        return 130
    if args.json:
        print(report_json(report))
    else:
        print_text(report)
    result = report.tally
    print(result.summary)
    duplicated = result.duplicated + sum(result.unexpected.values())
    return 0 if result.lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
