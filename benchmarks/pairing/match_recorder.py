"""The sink side: the messages the stack sent, matched to the sides awaiting them."""

from __future__ import annotations

import asyncio

from benchmarks.pairing_protocols import Side
from benchmarks.replies import ExpectedReply, ReplyRecorder
from infra.sink import ReceivedEvent


class MatchRecorder(ReplyRecorder):
    """The replies' recorder, awaiting each side's match by recipient, type *and* bytes.

    A match is known by its bytes as well as its recipient, because VeraId users may share
    an endpoint (see ``VeraidPairing``) while no two sides await the same bytes.
    """

    def __init__(self, match_content_type: str) -> None:
        super().__init__()
        self._match_content_type = match_content_type

    def reply_for(self, side: Side) -> ExpectedReply:
        return ExpectedReply(side.endpoint_id, self._match_content_type, side.match)

    def expect(self, side: Side) -> asyncio.Future[float]:
        """Await ``side``'s match; the future gets when it first reached the sink."""
        return self.expect_reply(self.reply_for(side))

    def delivered_to(self, side: Side) -> list[ReceivedEvent]:
        """Every copy of ``side``'s match received so far."""
        return self.delivered(self.reply_for(side))
