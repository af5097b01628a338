"""The sink side: the messages the stack sent, matched to the sides awaiting them."""

from __future__ import annotations

import asyncio

from benchmarks.pairing_protocols import Side
from infra.sink import EventRecorder, ReceivedEvent


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
