"""The replies a benchmark awaits at its sink, and the check that each came exactly once.

Every benchmark posts service messages to the ingress and knows, for each, which reply the
stack must send: to which endpoint, of which content type and, where the benchmark can know
them beforehand, with which exact bytes. ``ReplyRecorder`` is the sink's recorder that
resolves one future per awaited reply; ``check_replies`` counts what was missing, doubled
or redelivered. The pairing benchmark and the module benchmarks (``benchmarks.exchanges``)
share both.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from infra.sink import EventRecorder, ReceivedEvent

ACCEPTED = "204"


@dataclass(frozen=True)
class ExpectedReply:
    recipient_id: str
    content_type: str
    # The exact bytes, or None where only the module can tell a right reply from a wrong one
    # (an account's bundle): it checks those after the run.
    data: bytes | None = None


@dataclass
class Correctness:
    # Status (or error) -> count, for every request not answered 204.
    rejected: dict[str, int] = field(default_factory=dict)
    # Items (pairs, exchanges) the phase had but did not send before its deadline.
    not_sent: int = 0
    missing: int = 0
    # A second reply with a new event id: the stack did the work twice.
    duplicated: int = 0
    # The same event again: an emission retried (at-least-once), still one message too many.
    redelivered: int = 0
    # Messages no one awaited (wrong bytes, wrong recipient, another content type such as a
    # pairing failure), by content type.
    unexpected: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        failures = (self.not_sent, self.missing, self.duplicated, self.redelivered)
        return not self.rejected and not self.unexpected and not any(failures)


class ReplyRecorder(EventRecorder):
    """The tests' recorder, plus the replies a benchmark awaits.

    One future per awaited reply rather than ``wait_for`` predicates: with thousands of
    replies awaited, re-evaluating every predicate on every event would cost more than the
    sink.
    """

    def __init__(self) -> None:
        super().__init__()
        self._awaited: dict[ExpectedReply, asyncio.Future[float]] = {}
        self._delivered: dict[ExpectedReply, list[ReceivedEvent]] = {}
        # Anything no one awaits, since the last check took them.
        self._unexpected: list[ReceivedEvent] = []

    def expect_reply(self, reply: ExpectedReply) -> asyncio.Future[float]:
        """Await ``reply``; the future gets the time it first reached the sink."""
        if reply in self._awaited:
            raise ValueError("two requests await the same reply: they would be confused")
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._awaited[reply] = future
        self._delivered[reply] = []
        return future

    async def add(self, event: ReceivedEvent) -> None:
        await super().add(event)
        # Known bytes first; otherwise a reply awaited with any bytes, to be checked later.
        reply = ExpectedReply(event.subject, event.content_type, event.data)
        if reply not in self._awaited:
            reply = ExpectedReply(event.subject, event.content_type)
        if reply not in self._awaited:
            self._unexpected.append(event)
            return
        self._delivered[reply].append(event)
        future = self._awaited[reply]
        if not future.done():
            future.set_result(event.received_at)

    def delivered(self, reply: ExpectedReply) -> list[ReceivedEvent]:
        """Every copy of ``reply`` received so far."""
        return self._delivered.get(reply, [])

    def take_unexpected(self, content_type: str | None = None) -> dict[str, int]:
        """The messages no one awaited since the last call, counted by content type; with
        ``content_type``, only those of that type are taken (the rest wait for the next)."""
        taken: list[ReceivedEvent] = []
        kept: list[ReceivedEvent] = []
        for event in self._unexpected:
            (taken if content_type in (None, event.content_type) else kept).append(event)
        self._unexpected = kept
        return dict(Counter(event.content_type for event in taken))


def check_replies(
    statuses: Iterable[str],
    not_sent: int,
    replies: Iterable[ExpectedReply],
    recorder: ReplyRecorder,
) -> Correctness:
    """Every request accepted and every reply received exactly once.

    Messages no one awaited are not counted here: they belong to the whole phase, which
    takes them from the recorder once (``take_unexpected``).
    """
    rejected = Counter(status for status in statuses if status != ACCEPTED)
    result = Correctness(rejected=dict(rejected), not_sent=not_sent)
    for reply in replies:
        got = recorder.delivered(reply)
        distinct_ids = len({event.event_id for event in got})
        result.missing += not got
        result.duplicated += max(distinct_ids - 1, 0)
        result.redelivered += len(got) - distinct_ids
    return result
