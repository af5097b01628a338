"""The one step that concludes a match: its stored requests deleted, both messages sent.

A match used to take three local activities (two emissions and a deletion). Each local
activity costs the worker an activation, a marker and two payloads, and a match is most of
what a pair costs, so one activity does all three. It fails only if MongoDB does: the
deletion comes first, so a retry sends nothing twice that the first try did not send
already (and the messages keep their event ids, so the endpoint keeps one copy). A message
the sink did not take is handed back for ``workflows.replies.emit``'s usual retries.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.egress import Egress
from activities.pairing_store import PairingRequestStore
from contract.messages import OutgoingMessage
from contract.pairing import MatchDelivered, MatchToDeliver

# Named for the Web UI; the pairing benchmark finds a match's marker in histories by it.
ACTIVITY_NAME = "deliver_pairing_match"


class MatchDelivery:
    def __init__(self, store: PairingRequestStore, egress: Egress) -> None:
        self._store = store
        self._egress = egress

    @activity.defn(name=ACTIVITY_NAME)
    async def deliver(self, match: MatchToDeliver) -> MatchDelivered:
        await self._store.delete(match.concluded)
        sent = await asyncio.gather(*(self._send(message) for message in match.messages))
        undelivered = [m.event_id for m, ok in zip(match.messages, sent, strict=True) if not ok]
        return MatchDelivered(undelivered)

    async def _send(self, message: OutgoingMessage) -> bool:
        try:
            await self._egress.emit_service_message(message)
        # Whatever the sink raised, the attempt was logged and counted by the egress; the
        # workflow retries the message through ``emit``, which knows every failure.
        except Exception:  # noqa: BLE001
            return False
        return True
