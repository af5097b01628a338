"""Forwarding one service message to another endpoint: pairing authorisations.

The ingress has already checked the message (it is cheap: one DER parse and a hash) and
chosen recipient, type and content; the workflow only makes the emission durable. Its id
comes from the sender and parcel, so a redelivered message is not forwarded twice: once the
message is sent, the workflow remembers the parcel for the dedup window (workflows.remember).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contract.messages import Forwarding
    from workflows import visibility
    from workflows.remember import remember_parcel
    from workflows.replies import emit, event_id, outgoing_message

WORKFLOW_ID_PREFIX = "forward"


def workflow_id_for(sender_id: str, parcel_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}:{sender_id}:{parcel_id}"


@workflow.defn(name="ForwardServiceMessage")
class ForwardServiceMessage:
    @workflow.run
    async def run(self, forwarding: Forwarding) -> None:
        taken_at = workflow.now()
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
        remember_parcel(taken_at, forwarding.dedup_window_seconds)
