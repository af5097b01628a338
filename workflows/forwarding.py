"""Forwarding one service message to another endpoint: pairing authorisations.

The ingress has already checked the message (it is cheap: one DER parse and a hash) and
chosen recipient, type and content; the workflow only makes the emission durable. Its id
comes from the sender and parcel, so a redelivered message is not forwarded twice: the start
is a no-op while it runs, and refused once it closed; after that, the ingress's record of
taken parcels drops it (ingress.parcel_ledger).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contract.messages import Forwarding
    from workflows import visibility
    from workflows.replies import emit, event_id, outgoing_message

WORKFLOW_ID_PREFIX = "forward"


def workflow_id_for(sender_id: str, parcel_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}:{sender_id}:{parcel_id}"


@workflow.defn(name="ForwardServiceMessage")
class ForwardServiceMessage:
    @workflow.run
    async def run(self, forwarding: Forwarding) -> None:
        await emit(
            outgoing_message(
                event_id=event_id("forward"),
                sender_endpoint_id=forwarding.server_endpoint_id,
                recipient_endpoint_id=forwarding.recipient_endpoint_id,
                content_type=forwarding.content_type,
                content_b64=forwarding.content_b64,
            )
        )
        visibility.record(outcome="forwarded")
