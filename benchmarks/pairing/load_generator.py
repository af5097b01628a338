"""Driving pairs through the ingress: the HTTP client and the ways pairs arrive.

A closed loop (``in_lanes``: each lane sends its next pair once its last one was answered) or
an open loop (``at_rate``: Poisson arrivals, whatever the earlier pairs are doing). Every
request is a binary-mode CloudEvent as the Awala Internet Endpoint posts it; matches are
awaited on the ``MatchRecorder``, not here.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import aiohttp

from awala.service_messages import INCOMING_SERVICE_MESSAGE_TYPE
from benchmarks.pairing.match_recorder import MatchRecorder
from benchmarks.pairing_protocols import Pair, Side
from benchmarks.replies import ACCEPTED

SERVER_ENDPOINT_ID = "0" + hashlib.sha256(b"letro benchmark server").hexdigest()
HTTP_TIMEOUT = 10.0
# Hypercorn closes idle keep-alive connections after 5 s; reusing one at that moment fails
# the request. Dropping idle connections sooner on our side avoids most such races.
KEEPALIVE_EXPIRY = 2.0
# A request that failed below HTTP is sent again with the same parcel id, as the broker
# redelivers a message: the workflow ignores a parcel it already has, so a retry can never
# duplicate a match (and ``figures.check`` would catch it if it did).
TRANSPORT_RETRIES = 2

T = TypeVar("T")
R = TypeVar("R")


def event_headers(sender_id: str, content_type: str) -> dict[str, str]:
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


class IngressClient:
    """Posts service messages to the ingress, as the Awala Internet Endpoint does."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self._url = url
        self.transport_retries = 0

    async def post(self, sender_id: str, content_type: str, body: bytes) -> str:
        """Post one message; return the status code, or the last error's name."""
        headers = event_headers(sender_id, content_type)
        outcome = "error:not sent"
        for attempt in range(TRANSPORT_RETRIES + 1):
            try:
                async with self._http.post(self._url, headers=headers, data=body) as response:
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


class PairingClient(IngressClient):
    def __init__(
        self, http: aiohttp.ClientSession, url: str, recorder: MatchRecorder, content_type: str
    ) -> None:
        super().__init__(http, url)
        self._recorder = recorder
        self._content_type = content_type

    async def send(self, side: Side) -> str:
        """Post one side's pairing request; return the status code, or the last error's name."""
        return await self.post(side.endpoint_id, self._content_type, side.request)

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


async def open_client(
    exits: AsyncExitStack, pool: int, url: str, recorder: MatchRecorder, content_type: str
) -> PairingClient:
    """A client of the ingress at ``url`` with its own pool of ``pool`` connections."""
    return PairingClient(await open_session(exits, pool), url, recorder, content_type)


async def open_session(exits: AsyncExitStack, pool: int) -> aiohttp.ClientSession:
    """An HTTP session with its own pool of ``pool`` connections, closed with ``exits``.

    aiohttp, not httpx: the generator shares the cores with the stack it measures, and
    with httpx it spent more CPU per request than the ingress serving it (py-spy).
    """
    connector = aiohttp.TCPConnector(limit=pool, keepalive_timeout=KEEPALIVE_EXPIRY)
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
    return await exits.enter_async_context(
        aiohttp.ClientSession(connector=connector, timeout=timeout)
    )


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


def bounded(
    drive: Callable[[Pair], Awaitable[PairOutcome]],
    outstanding: asyncio.Semaphore,
    deadline: float,
) -> Callable[[Pair], Awaitable[PairOutcome]]:
    """``drive``, holding one of ``outstanding``'s slots from the first request to the match.

    Without a bound, a closed loop that waits only for acceptance runs ahead of matching and
    its latency becomes time spent queued; with one, it measures the service time.
    """

    async def drive_bounded(pair: Pair) -> PairOutcome:
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                await outstanding.acquire()
        except TimeoutError:
            # Matches stopped coming: this pair goes out unbounded and the lane then stops,
            # as every lane does past the deadline; the missing matches fail the phase.
            return await drive(pair)
        outcome = await drive(pair)
        if any(status != ACCEPTED for status in outcome.statuses):
            outstanding.release()  # a refused pair will never match
        else:
            both = asyncio.gather(*outcome.matches)
            both.add_done_callback(lambda _: outstanding.release())
        return outcome

    return drive_bounded


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
