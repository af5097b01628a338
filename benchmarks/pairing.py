"""Contact pairing through the real stack: throughput, latency and the floor, either protocol.

    python -m benchmarks.pairing [--protocol legacy|veraid] [--pairs 2000] [--concurrency 64]
        [--simultaneous-pairs 200] [--rate R] [--json]

``python -m benchmarks.legacy_pairing`` and ``python -m benchmarks.veraid_pairing`` are the
same benchmark with the protocol chosen. ``--protocol`` picks what each pair sends
(``benchmarks.pairing_protocols``): legacy CSV requests, or real VeraId
``contact-pairing.request`` SignatureBundles (RSA-2048 keys, a mock DNSSEC chain the
worker is configured to trust). Every request of every phase is made first, before the
stack starts; the time that takes is printed. For VeraId, this process then measures how
fast it verifies those same bundles on one thread (per CPU second, with a warm
``VerificationCache`` and with none), to show what share of a core verification takes at
the rate the stack reaches.

By default the benchmark starts its own stack on 127.0.0.1 in a scratch folder (Temporal
dev server on SQLite, mongod, one worker and one ingress process, a recording sink in
this process) and stops it at the end, also on error or Ctrl-C. The phases, each bounded
by a pair count and by ``--phase-timeout``:

1. warm-up: a few pairs and floor workflows, checked but not reported;
2. floor: ``--pairs`` bare signal-with-starts pairs (two per pair) of an empty workflow
   (``benchmarks.floor``) against the same Temporal server, ``--concurrency`` at a time;
3. closed loop: ``--pairs`` pairs over HTTP to the ingress, ``--concurrency`` at a time,
   each pair's first request and then, once it is accepted, its second;
4. simultaneous arrival: ``--simultaneous-pairs`` pairs, ``--concurrency`` at a time, both
   requests of a pair posted at the same instant on two connections, so they race each
   other through the ingress and the worker;
5. open loop: pairs arriving at ``--rate`` pairs/s (Poisson); by default half the floor's
   rate, for at most ``--open-seconds`` of arrivals.

Matched pairs/s counts pairs whose two match messages both reached the sink, over the time
from the first request sent to the last match received. The floor's pairs/s likewise counts
*completed* floor workflows, over the time from the first signal-with-start to the moment
the floor worker finished the last one, so both include everything a pair makes Temporal
and the worker do, not only the acknowledgements; the target ratio (per protocol) compares
these two. The acceptance rates (requests answered 204, signal-with-starts accepted) are
printed as well, with their own ratio. Latency is from sending a pair's second request (in
the simultaneous phase, both) to both its match messages arriving at the sink. In the closed
loop requests are accepted faster than pairs are matched, so its latency is mostly time
queued behind the backlog; the open loop's is the one to read as the service's latency at a
given load.

A match is recognised by its recipient endpoint id *and* its exact bytes: the legacy match
CSV, or for VeraId the contact's own bundle, with the protocol's content type. Exit status:
0 when every request was accepted, every side of every pair got exactly one such message
(so exactly two per pair), nothing else reached the sink, and every floor signal-with-start
was accepted; 1 otherwise; 130 on Ctrl-C. Throughput and latency targets are reported, not
enforced: they depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp
from temporalio.client import Client
from temporalio.service import RPCError

from awala.service_messages import INCOMING_SERVICE_MESSAGE_TYPE
from benchmarks.cpu import CpuSnapshot, ms_per_item, snapshot, usage_percent
from benchmarks.floor import FLOOR_SIGNAL, FLOOR_WORKFLOW, parse_completion
from benchmarks.pairing_protocols import (
    PROTOCOL_NAMES,
    LegacyPairing,
    Pair,
    PairingProtocol,
    Side,
    VeraidPairing,
    VerificationFigures,
    create_protocol,
)
from benchmarks.stack import (
    Stack,
    is_loopback,
    serve_sink,
    start_floor_worker,
    start_local_stack,
)
from infra.services import free_port
from infra.sink import EventRecorder, ReceivedEvent

ACCEPTED = "204"
SERVER_ENDPOINT_ID = "0" + hashlib.sha256(b"letro benchmark server").hexdigest()
HTTP_TIMEOUT = 10.0
# Hypercorn closes idle keep-alive connections after 5 s; reusing one at that moment fails
# the request. Dropping idle connections sooner on our side avoids most such races.
KEEPALIVE_EXPIRY = 2.0
# A request that failed below HTTP is sent again with the same parcel id, as the broker
# redelivers a message: the workflow ignores a parcel it already has, so a retry can never
# duplicate a match (and the check below would catch it if it did).
TRANSPORT_RETRIES = 2
# Open loop: a pool this big never makes an arrival wait for a connection at the rates the
# stack can sustain, so the generator does not hide queueing from the figures.
OPEN_LOOP_POOL = 256
FLOOR_POLL_INTERVAL = 0.25
FLOOR_RPC_TIMEOUT = timedelta(seconds=10)
OK = "ok"

T = TypeVar("T")
R = TypeVar("R")


class Arrival(StrEnum):
    """How a phase's pairs reach the ingress."""

    CLOSED = "closed loop"
    SIMULTANEOUS = "simultaneous arrival"
    OPEN = "open loop"


# --------------------------------------------------------------------------------------------
# The workload, made before anything is measured


@dataclass(frozen=True)
class Workload:
    protocol: PairingProtocol
    run_id: str
    warmup: list[Pair]
    closed: list[Pair]
    simultaneous: list[Pair]
    # As many as the open loop can need; it takes the first ones its rate asks for.
    open: list[Pair]

    @property
    def requests(self) -> int:
        phases = (self.warmup, self.closed, self.simultaneous, self.open)
        return 2 * sum(len(pairs) for pairs in phases)


def prepare(args: argparse.Namespace) -> Workload:
    """Every request of the run; with VeraId, also the organisation and the endpoint keys."""
    protocol = create_protocol(args.protocol, endpoint_keys=args.endpoint_keys)
    run_id = uuid.uuid4().hex[:8]

    def pairs(phase: str, count: int) -> list[Pair]:
        return protocol.make_pairs(run_id, phase, count)

    open_count = args.pairs
    if args.rate:
        open_count = min(args.pairs, open_loop_pairs(args.rate, args.open_seconds))
    return Workload(
        protocol=protocol,
        run_id=run_id,
        warmup=pairs("warmup", args.warmup),
        closed=pairs("closed", args.pairs),
        simultaneous=pairs("simultaneous", args.simultaneous_pairs),
        open=pairs("open", open_count),
    )


def open_loop_pairs(rate_per_s: float, seconds: float) -> int:
    return max(math.ceil(rate_per_s * seconds), 1)


def _event_headers(sender_id: str, content_type: str) -> dict[str, str]:
    """Headers of a binary-mode CloudEvent as the Awala Internet Endpoint posts it."""
    now = datetime.now(UTC)
    return {
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),  # the parcel id, unique per message
        "ce-type": INCOMING_SERVICE_MESSAGE_TYPE,
        "ce-source": sender_id,
        "ce-subject": SERVER_ENDPOINT_ID,
        "ce-time": now.isoformat(timespec="milliseconds"),
        "ce-expiry": (now + timedelta(days=90)).isoformat(timespec="milliseconds"),
        "content-type": content_type,
    }


# --------------------------------------------------------------------------------------------
# The sink side


class MatchRecorder(EventRecorder):
    """The tests' recorder, plus the matches the benchmark awaits, by recipient and bytes.

    A match is known by its recipient *and* its bytes, because VeraId users may share an
    endpoint (see ``VeraidPairing``) while no two sides await the same bytes. One future per
    awaited match instead of ``wait_for`` predicates: with thousands of pairs waiting,
    re-evaluating every predicate on every event would cost more than the sink.
    """

    def __init__(self, match_content_type: str) -> None:
        super().__init__()
        self._match_content_type = match_content_type
        self._awaited: dict[tuple[str, bytes], asyncio.Future[float]] = {}
        self._delivered: dict[tuple[str, bytes], list[ReceivedEvent]] = {}
        # Anything no side awaits, since the last phase's check took them.
        self._unexpected: list[ReceivedEvent] = []

    def expect(self, side: Side) -> asyncio.Future[float]:
        """Await ``side``'s match; the future gets when it first reached the sink."""
        key = (side.endpoint_id, side.match)
        if key in self._awaited:
            raise ValueError("two sides await the same match: their messages would be confused")
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._awaited[key] = future
        self._delivered[key] = []
        return future

    async def add(self, event: ReceivedEvent) -> None:
        await super().add(event)
        key = (event.subject, event.data)
        delivered = self._delivered.get(key)
        if delivered is None or event.content_type != self._match_content_type:
            self._unexpected.append(event)
            return
        delivered.append(event)
        future = self._awaited[key]
        if not future.done():
            future.set_result(event.received_at)

    def delivered_to(self, side: Side) -> list[ReceivedEvent]:
        """Every copy of ``side``'s match received so far."""
        return self._delivered.get((side.endpoint_id, side.match), [])

    def take_unexpected(self) -> list[ReceivedEvent]:
        taken, self._unexpected = self._unexpected, []
        return taken


# --------------------------------------------------------------------------------------------
# Driving pairs through the ingress


@dataclass
class PairOutcome:
    pair: Pair
    first_sent: float
    second_sent: float
    statuses: tuple[str, str]
    # When each side's match reached the sink (time.monotonic()).
    matches: tuple[asyncio.Future[float], asyncio.Future[float]]

    def matched_at(self) -> float | None:
        if not all(future.done() for future in self.matches):
            return None
        return max(future.result() for future in self.matches)


class PairingClient:
    def __init__(
        self, http: aiohttp.ClientSession, url: str, recorder: MatchRecorder, content_type: str
    ) -> None:
        self._http = http
        self._url = url
        self._recorder = recorder
        self._content_type = content_type
        self.transport_retries = 0

    async def send(self, side: Side) -> str:
        """Post one side's pairing request; return the status code, or the last error's name."""
        headers = _event_headers(side.endpoint_id, self._content_type)
        outcome = "error:not sent"
        for attempt in range(TRANSPORT_RETRIES + 1):
            try:
                async with self._http.post(
                    self._url, headers=headers, data=side.request
                ) as response:
                    await response.read()
            except (
                aiohttp.ClientConnectionError,
                aiohttp.ClientPayloadError,
                TimeoutError,
            ) as error:
                outcome = f"error:{type(error).__name__}"
                if attempt < TRANSPORT_RETRIES:
                    self.transport_retries += 1
                continue
            return str(response.status)
        return outcome

    def _expect(self, pair: Pair) -> tuple[asyncio.Future[float], asyncio.Future[float]]:
        return self._recorder.expect(pair.first), self._recorder.expect(pair.second)

    async def drive(self, pair: Pair) -> PairOutcome:
        """Send the pair's first request, then its second; matches are awaited elsewhere."""
        matches = self._expect(pair)
        first_sent = time.monotonic()
        first_status = await self.send(pair.first)
        second_sent = time.monotonic()
        second_status = await self.send(pair.second)
        return PairOutcome(pair, first_sent, second_sent, (first_status, second_status), matches)

    async def drive_together(self, pair: Pair) -> PairOutcome:
        """Send both requests of the pair at the same instant (needs two connections)."""
        matches = self._expect(pair)
        sent = time.monotonic()
        first_status, second_status = await asyncio.gather(
            self.send(pair.first), self.send(pair.second)
        )
        return PairOutcome(pair, sent, sent, (first_status, second_status), matches)


async def in_lanes(
    items: Iterable[T], deadline: float, drivers: Sequence[Callable[[T], Awaitable[R]]]
) -> list[R]:
    """Closed loop: one lane per driver, each driving one item at a time until none is left."""
    pending = iter(items)  # shared: each item goes to exactly one lane
    results: list[R] = []

    async def lane(drive: Callable[[T], Awaitable[R]]) -> None:
        for item in pending:
            if time.monotonic() > deadline:
                return  # the items left are reported as not sent
            results.append(await drive(item))

    await asyncio.gather(*(lane(drive) for drive in drivers))
    return results


async def at_rate(
    client: PairingClient, pairs: Sequence[Pair], rate: float, deadline: float, seed: int
) -> tuple[list[PairOutcome], float]:
    """Open loop: start pairs at Poisson arrivals, whatever the earlier ones are doing.

    Returns the outcomes and how late (seconds) the most delayed arrival was started.
    """
    rng = random.Random(seed)
    tasks: list[asyncio.Task[PairOutcome]] = []
    due = time.monotonic()
    worst_lag = 0.0
    for pair in pairs:
        if due > deadline:
            break
        await asyncio.sleep(max(due - time.monotonic(), 0.0))
        worst_lag = max(worst_lag, time.monotonic() - due)
        tasks.append(asyncio.create_task(client.drive(pair)))
        due += rng.expovariate(rate)
    return list(await asyncio.gather(*tasks)), worst_lag


async def wait_for_matches(outcomes: Sequence[PairOutcome], deadline: float) -> None:
    pending = [future for outcome in outcomes for future in outcome.matches if not future.done()]
    if pending:
        await asyncio.wait(pending, timeout=max(deadline - time.monotonic(), 0.0))


# --------------------------------------------------------------------------------------------
# Figures


@dataclass
class LatencyMs:
    p50: float
    p95: float
    p99: float
    max: float


@dataclass
class Correctness:
    # Status (or error) -> count, for every request not answered 204.
    rejected: dict[str, int] = field(default_factory=dict)
    pairs_not_sent: int = 0
    missing_matches: int = 0
    # A second match with a new event id: the pair was matched twice.
    duplicate_matches: int = 0
    # The same event again: an emission retried (at-least-once), still one message too many.
    redelivered_matches: int = 0
    # Messages no side awaited: wrong bytes, wrong recipient, or another content type (such
    # as a pairing failure). Counted by content type, for the report.
    wrong_matches: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        failures = (
            self.pairs_not_sent,
            self.missing_matches,
            self.duplicate_matches,
            self.redelivered_matches,
            self.wrong_matches,
        )
        return not self.rejected and not any(failures)


@dataclass
class PairingFigures:
    phase: str
    arrival: Arrival
    pairs: int
    concurrency: int | None
    offered_pairs_per_s: float | None
    requests_accepted: int
    accepted_per_s: float
    pairs_matched: int
    # Pairs of which each side got its match exactly once: two messages, both right.
    pairs_with_two_matches: int
    matched_pairs_per_s: float
    seconds: float
    latency_ms: LatencyMs | None
    arrival_lag_max_ms: float | None
    transport_retries: int
    correctness: Correctness
    cpu_percent: dict[str, float]
    cpu_ms_per_pair: dict[str, float]


@dataclass
class FloorFigures:
    pairs: int
    concurrency: int
    signal_with_starts_accepted: int
    accepted_per_s: float
    pairs_completed: int
    completed_pairs_per_s: float
    seconds: float
    failures: dict[str, int]
    cpu_percent: dict[str, float]
    cpu_ms_per_pair: dict[str, float]


def percentile(sorted_values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    rank = max(math.ceil(percent / 100 * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def latency_ms(outcomes: Iterable[PairOutcome]) -> LatencyMs | None:
    values = sorted(
        1000 * (matched - outcome.second_sent)
        for outcome in outcomes
        if (matched := outcome.matched_at()) is not None
    )
    if not values:
        return None
    p50, p95, p99 = (round(percentile(values, p), 1) for p in (50, 95, 99))
    return LatencyMs(p50=p50, p95=p95, p99=p99, max=round(values[-1], 1))


def check(
    pairs: Sequence[Pair], outcomes: Sequence[PairOutcome], recorder: MatchRecorder
) -> Correctness:
    """Every request accepted, exactly one correct match per side, and no other message.

    Messages nobody awaited are charged to the phase checked next after they arrived:
    phases run one after the other, each waiting ``--grace`` for late ones.
    """
    rejected = Counter(s for outcome in outcomes for s in outcome.statuses if s != ACCEPTED)
    result = Correctness(rejected=dict(rejected), pairs_not_sent=len(pairs) - len(outcomes))
    for outcome in outcomes:
        for side in outcome.pair.sides:
            got = recorder.delivered_to(side)
            distinct_ids = len({event.event_id for event in got})
            result.missing_matches += not got
            result.duplicate_matches += max(distinct_ids - 1, 0)
            result.redelivered_matches += len(got) - distinct_ids
    result.wrong_matches = dict(Counter(e.content_type for e in recorder.take_unexpected()))
    return result


def pairs_with_two_matches(outcomes: Iterable[PairOutcome], recorder: MatchRecorder) -> int:
    return sum(
        all(len(recorder.delivered_to(side)) == 1 for side in outcome.pair.sides)
        for outcome in outcomes
    )


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


# --------------------------------------------------------------------------------------------
# Phases


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
            drivers = [lane.drive_together if together else lane.drive for lane in lanes]
            outcomes = await in_lanes(pairs, deadline, drivers)
    await wait_for_matches(outcomes, min(deadline, time.monotonic() + args.match_timeout))
    after = bench.cpu()
    # Late duplicates would come soon after the last match; wait a little for them.
    await asyncio.sleep(args.grace)
    return _pairing_figures(
        phase, arrival, pairs, outcomes, bench.recorder, (before, after),
        concurrency=None if arrival is Arrival.OPEN else args.concurrency,
        offered=rate_per_s, lag=lag, retries=sum(lane.transport_retries for lane in lanes),
    )  # fmt: skip


async def _pairing_client(bench: Bench, clients: AsyncExitStack, pool: int) -> PairingClient:
    """A client with its own connection pool of ``pool`` connections.

    aiohttp, not httpx: the generator shares the cores with the stack it measures, and
    with httpx it spent more CPU per request than the ingress serving it (py-spy).
    """
    connector = aiohttp.TCPConnector(limit=pool, keepalive_timeout=KEEPALIVE_EXPIRY)
    http = await clients.enter_async_context(
        aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
        )
    )
    content_type = bench.workload.protocol.request_content_type
    return PairingClient(http, bench.stack.ingress_url, bench.recorder, content_type)


def _pairing_figures(
    phase: str,
    arrival: Arrival,
    pairs: Sequence[Pair],
    outcomes: Sequence[PairOutcome],
    recorder: MatchRecorder,
    cpu: tuple[CpuSnapshot, CpuSnapshot],
    *,
    concurrency: int | None,
    offered: float | None,
    lag: float | None,
    retries: int,
) -> PairingFigures:
    start = min((outcome.first_sent for outcome in outcomes), default=0.0)
    accepted = sum(outcome.statuses.count(ACCEPTED) for outcome in outcomes)
    # Acceptance is measured up to the last second request's start: close enough for a
    # rate over thousands of requests, and it needs no extra timestamp per request.
    last_sent = max((outcome.second_sent for outcome in outcomes), default=start)
    matched_at = [m for outcome in outcomes if (m := outcome.matched_at()) is not None]
    seconds = max(matched_at, default=start) - start
    return PairingFigures(
        phase=phase,
        arrival=arrival,
        pairs=len(pairs),
        concurrency=concurrency,
        offered_pairs_per_s=None if offered is None else round(offered, 1),
        requests_accepted=accepted,
        accepted_per_s=rate(accepted, last_sent - start),
        pairs_matched=len(matched_at),
        pairs_with_two_matches=pairs_with_two_matches(outcomes, recorder),
        matched_pairs_per_s=rate(len(matched_at), seconds),
        seconds=round(seconds, 2),
        latency_ms=latency_ms(outcomes),
        arrival_lag_max_ms=None if lag is None else round(1000 * lag, 1),
        transport_retries=retries,
        correctness=check(pairs, outcomes, recorder),
        cpu_percent={name: round(value) for name, value in usage_percent(*cpu).items()},
        cpu_ms_per_pair=ms_per_item(*cpu, len(matched_at)),
    )


async def floor_phase(bench: Bench, prefix: str, count: int) -> FloorFigures:
    """Bare signal-with-starts, two per pair, of the empty floor workflow."""
    deadline = bench.deadline()
    before = bench.cpu()
    started_at = datetime.now(UTC)
    started = time.monotonic()

    async def drive(index: int) -> tuple[str, str]:
        workflow_id = f"{prefix}-{index}"
        first = await _signal_with_start(bench, workflow_id, "first")
        return first, await _signal_with_start(bench, workflow_id, "second")

    statuses = await in_lanes(range(count), deadline, [drive] * bench.args.concurrency)
    sent_seconds = time.monotonic() - started
    completed, last_close = await _wait_for_floor(bench, prefix, count, deadline)
    after = bench.cpu()
    seconds = (last_close - started_at).total_seconds() if last_close else 0.0
    accepted = sum(pair.count(OK) for pair in statuses)
    failures = Counter(s for pair in statuses for s in pair if s != OK)
    failures["not sent"] = count - len(statuses)
    return FloorFigures(
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
    )


async def _signal_with_start(bench: Bench, workflow_id: str, requester: str) -> str:
    try:
        await bench.temporal.start_workflow(
            FLOOR_WORKFLOW,
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
    prefix = f"benchmark-floor-warmup-{bench.workload.run_id}"
    floor = await floor_phase(bench, prefix, bench.args.warmup)
    if floor.failures:
        raise RuntimeError(f"floor warm-up failed: {floor.failures}")
    warmup = await pairing_phase(bench, "warmup", bench.workload.warmup, Arrival.CLOSED)
    return warmup.correctness


# --------------------------------------------------------------------------------------------
# The run


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
    closed_loop: PairingFigures | None = None
    simultaneous: PairingFigures | None = None
    open_loop: PairingFigures | None = None

    @property
    def ratio_to_floor(self) -> float | None:
        if not (self.floor and self.closed_loop and self.floor.completed_pairs_per_s):
            return None
        return round(self.closed_loop.matched_pairs_per_s / self.floor.completed_pairs_per_s, 2)

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
        return floor_ok and all(c is not None and c.ok for c in checks)


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
    _progress("warm-up done; floor phase")
    floor_prefix = f"benchmark-floor-{workload.run_id}"
    report.floor = await floor_phase(bench, floor_prefix, args.pairs)
    _progress(f"floor: {report.floor.completed_pairs_per_s} pairs/s; closed-loop phase")
    report.closed_loop = await pairing_phase(bench, "closed", workload.closed, Arrival.CLOSED)
    _progress(f"closed loop: {report.closed_loop.matched_pairs_per_s} pairs/s")
    if workload.simultaneous:
        _progress("simultaneous-arrival phase")
        report.simultaneous = await pairing_phase(
            bench, "simultaneous", workload.simultaneous, Arrival.SIMULTANEOUS
        )
        _progress(f"simultaneous arrival: {report.simultaneous.matched_pairs_per_s} pairs/s")
    offered = args.rate or report.floor.completed_pairs_per_s / 2
    if offered <= 0:
        return
    _progress("open-loop phase")
    pairs = workload.open[: open_loop_pairs(offered, args.open_seconds)]
    report.open_loop = await pairing_phase(bench, "open", pairs, Arrival.OPEN, rate_per_s=offered)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Output


def print_report(report: Report, title: str) -> None:
    before = " ".join(f"{v:.2f}" for v in report.load_average_before)
    after = " ".join(f"{v:.2f}" for v in report.load_average_after)
    print(f"Letro {title.lower()} benchmark, {report.started}, {report.cpus} CPUs")
    print(f"Stack: {report.stack}")
    print(f"Requests: {report.material}; made in {report.preparation_seconds} s beforehand")
    print(f"Load average (1/5/15 min): before {before}; after {after}")
    if report.floor:
        _print_floor(report.floor)
    if report.closed_loop:
        _print_pairing(report.closed_loop, title)
        ratio = report.ratio_to_floor
        if ratio is not None:
            verdict = "met" if ratio >= report.ratio_target else "MISSED"
            print(
                f"  ratio to floor        {ratio:.2f} matched / completed floor pairs"
                f"  (target >= {report.ratio_target}: {verdict})"
            )
        if report.acceptance_ratio is not None:
            print(f"  acceptance ratio      {report.acceptance_ratio:.2f} of the floor's")
    if report.simultaneous:
        _print_pairing(report.simultaneous, title)
    if report.open_loop:
        _print_pairing(report.open_loop, title)
        latency = report.open_loop.latency_ms
        if latency is not None and report.p99_target_ms is not None:
            verdict = "met" if latency.p99 < report.p99_target_ms else "MISSED"
            print(f"  p99 target            < {report.p99_target_ms:.0f} ms: {verdict}")
    if report.verification:
        _print_verification(report.verification, report.closed_loop)
    print(f"Correctness: {'OK' if report.ok else 'FAILED'}")


def _print_floor(floor: FloorFigures) -> None:
    print(
        f"\nFloor: empty workflow, 2 signal-with-starts per pair, concurrency {floor.concurrency}"
    )
    requests = 2 * floor.pairs
    print(
        f"  signal-with-starts    {floor.signal_with_starts_accepted}/{requests} accepted,"
        f" {floor.accepted_per_s}/s ({floor.accepted_per_s / 2:.1f} pairs/s)"
    )
    print(
        f"  completed pairs       {floor.pairs_completed}/{floor.pairs} in {floor.seconds} s:"
        f" {floor.completed_pairs_per_s} pairs/s"
    )
    if floor.failures:
        print(f"  FAILURES              {floor.failures}")
    print(f"  CPU % of one core     {_cpu(floor.cpu_percent)}")
    print(f"  CPU ms per pair       {_cpu(floor.cpu_ms_per_pair, digits=1)}")


def _print_pairing(figures: PairingFigures, title: str) -> None:
    if figures.arrival is Arrival.OPEN:
        print(
            f"\n{title}, open loop, Poisson arrivals at {figures.offered_pairs_per_s}"
            f" pairs/s (latest arrival {figures.arrival_lag_max_ms} ms behind schedule)"
        )
    elif figures.arrival is Arrival.SIMULTANEOUS:
        print(
            f"\n{title}, simultaneous arrival (a pair's two requests at once),"
            f" concurrency {figures.concurrency}"
        )
    else:
        print(f"\n{title}, closed loop, concurrency {figures.concurrency}")
    requests = 2 * figures.pairs
    print(
        f"  accepted requests     {figures.requests_accepted}/{requests} (204),"
        f" {figures.accepted_per_s}/s ({figures.accepted_per_s / 2:.1f} pairs/s)"
    )
    print(
        f"  matched pairs         {figures.pairs_matched}/{figures.pairs} in {figures.seconds} s:"
        f" {figures.matched_pairs_per_s} pairs/s"
    )
    print(f"  exactly two matches   {figures.pairs_with_two_matches}/{figures.pairs} pairs")
    if figures.latency_ms:
        lat = figures.latency_ms
        sent = "both requests" if figures.arrival is Arrival.SIMULTANEOUS else "2nd request"
        print(
            f"  latency ({sent} to both matches)  p50 {lat.p50} ms  p95 {lat.p95} ms"
            f"  p99 {lat.p99} ms  max {lat.max} ms"
        )
    if figures.transport_retries:
        print(f"  transport retries     {figures.transport_retries} (same parcel id, not failures)")
    if not figures.correctness.ok:
        print(f"  FAILURES              {figures.correctness}")
    print(f"  CPU % of one core     {_cpu(figures.cpu_percent)}")
    print(f"  CPU ms per pair       {_cpu(figures.cpu_ms_per_pair, digits=1)}")


def _print_verification(figures: VerificationFigures, closed: PairingFigures | None) -> None:
    print(
        f"\nVerification: veraid.verify_signature_bundle over the closed loop's {figures.bundles}"
        " bundles, in this process on one thread, before the stack started"
    )
    for label, warm in (("warm cache", True), ("no cache", False)):
        per_second = figures.warm_per_cpu_second if warm else figures.cold_per_cpu_second
        print(
            f"  {label:<21} {per_second:.0f} per CPU second"
            f" ({figures.ms_per_pair(warm=warm)} ms per pair of requests)"
        )
    if closed is None or not closed.matched_pairs_per_s:
        return
    # Each pair is two verifications; the worker's cache is warm after its first request.
    share = figures.core_share(closed.matched_pairs_per_s)
    cold = figures.core_share(closed.matched_pairs_per_s, warm=False)
    print(
        f"  at {closed.matched_pairs_per_s} matched pairs/s (closed loop) verification needs"
        f" {share:.0%} of one core ({cold:.0%} with no cache)"
    )
    worker_ms = closed.cpu_ms_per_pair.get("worker")
    if worker_ms:
        print(
            f"  the worker spent {worker_ms} ms of CPU per pair, of which verification would"
            f" be {figures.ms_per_pair() / worker_ms:.0%}"
        )


def _cpu(usage: dict[str, float], digits: int = 0) -> str:
    # Components idle in this phase (the other phase's worker) are left out; "others" and
    # "machine" always show, as they tell whether the figures were measured on a quiet machine.
    shown = {n: v for n, v in usage.items() if round(v, digits) or n in ("others", "machine")}
    return ", ".join(f"{name} {value:.{digits}f}" for name, value in shown.items())


def report_json(report: Report) -> str:
    data = asdict(report)
    data["ratio_to_floor"] = report.ratio_to_floor
    data["acceptance_ratio"] = report.acceptance_ratio
    data["verification_core_share"] = report.verification_core_share
    data["ok"] = report.ok
    return json.dumps(data, indent=2)


# --------------------------------------------------------------------------------------------
# Command line


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
    add("--pairs", type=_positive_int, default=2000, help="pairs per measured phase")
    add("--concurrency", type=_positive_int, default=64, help="pairs in flight (closed loop)")
    add("--workers", type=_positive_int, default=1, help="worker processes of the stack")
    add(
        "--simultaneous-pairs",
        type=_non_negative_int,
        default=200,
        help="pairs whose two requests are sent at once (0 skips that phase)",
    )
    add("--rate", type=float, help="open-loop arrivals, pairs/s (default: half the floor)")
    add("--open-seconds", type=float, default=20.0, help="open-loop arrivals span at most this")
    add("--warmup", type=_positive_int, default=20, help="warm-up pairs, not reported")
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
        # Each run makes a new mock DNSSEC chain, which a worker started elsewhere would not
        # trust: every request would be refused.
        parser.error("--protocol veraid needs its own stack, whose worker trusts the mock chain")
    return args


def _positive_int(text: str) -> int:
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
        _progress(f"making the {args.protocol} requests")
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
        _progress(f"made {workload.requests} requests in {report.preparation_seconds} s")
        report.verification = protocol.measure_verification(workload.closed, args.verify_seconds)
        if report.verification:
            _progress(
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


if __name__ == "__main__":
    sys.exit(main())
