"""Driving exchanges through the ingress in a closed loop that waits for the replies.

Each lane is one user at a time: it posts an exchange's messages in order, waits until
every reply it is owed reached the sink (or ``reply_timeout`` passed), and only then takes
the next exchange. At most ``concurrency`` exchanges are therefore outstanding, so the
latencies are service time, not time queued behind a backlog the load generator built.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

import aiohttp

from benchmarks.exchanges.workload import Exchange
from benchmarks.pairing.load_generator import IngressClient, in_lanes, open_session
from benchmarks.replies import ACCEPTED, ReplyRecorder


@dataclass
class ExchangeOutcome:
    exchange: Exchange
    first_sent: float
    # When the last message was posted: latency runs from here to the last reply.
    last_sent: float
    statuses: tuple[str, ...]
    # When each reply reached the sink (time.monotonic()).
    replies: tuple[asyncio.Future[float], ...]

    def completed_at(self) -> float | None:
        """When the last reply arrived, once all did."""
        if not all(future.done() for future in self.replies):
            return None
        return max((future.result() for future in self.replies), default=self.last_sent)

    @property
    def accepted(self) -> bool:
        return all(status == ACCEPTED for status in self.statuses)


class ExchangeClient(IngressClient):
    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        recorder: ReplyRecorder,
        reply_timeout: float,
    ) -> None:
        super().__init__(http, url)
        self._recorder = recorder
        self._reply_timeout = reply_timeout

    async def drive(self, exchange: Exchange) -> ExchangeOutcome:
        """Post the exchange's messages in turn, then wait for its replies."""
        # Awaited before anything is sent, so that no reply can arrive unawaited.
        replies = tuple(self._recorder.expect_reply(reply) for reply in exchange.replies)
        first_sent = last_sent = time.monotonic()
        statuses: list[str] = []
        for message in exchange.messages:
            last_sent = time.monotonic()
            status = await self.post(message.sender_id, message.content_type, message.body)
            statuses.append(status)
            if status != ACCEPTED:
                break  # the module would refuse the rest too, or never reply
        outcome = ExchangeOutcome(exchange, first_sent, last_sent, tuple(statuses), replies)
        if outcome.accepted and replies:
            await asyncio.wait(replies, timeout=self._reply_timeout)
        return outcome


async def closed_loop(
    exchanges: Sequence[Exchange],
    *,
    url: str,
    recorder: ReplyRecorder,
    concurrency: int,
    stop_at: float,
    reply_timeout: float,
) -> tuple[list[ExchangeOutcome], int]:
    """Drive ``exchanges`` on ``concurrency`` lanes until none is left or ``stop_at`` passed.

    Returns the outcomes of the exchanges started and the transport retries (requests
    sent again with the same parcel id after a connection failure, not failures).
    """
    async with AsyncExitStack() as sessions:
        # One connection per lane, as a user has one request in flight.
        lanes = [
            ExchangeClient(await open_session(sessions, 1), url, recorder, reply_timeout)
            for _ in range(concurrency)
        ]
        outcomes = await in_lanes(exchanges, stop_at, [lane.drive for lane in lanes])
    return outcomes, sum(lane.transport_retries for lane in lanes)
