"""How every workflow sends a service message: the one place that calls the egress.

Call these from workflow code only: they read the workflow's clock and identity.
"""

import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.egress import Egress
    from awala.service_messages import default_expiry
    from contract.messages import OutgoingMessage

# For steps that must eventually happen however long the outage lasts (a decided reply,
# a stored request, a compensation): retried with backoff and no deadline; the Web UI
# shows the attempts.
RETRY_FOREVER = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
EMIT_TIMEOUT = timedelta(seconds=15)


def event_id(step: str) -> str:
    """An outgoing event id fixed by the workflow run and step: a retried emission reuses it."""
    info = workflow.info()
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"temporal:{info.workflow_id}/{info.run_id}/{step}"))


def outgoing_message(
    *,
    event_id: str,
    sender_endpoint_id: str,
    recipient_endpoint_id: str,
    content_type: str,
    content_b64: str,
) -> OutgoingMessage:
    """A message created now, expiring after Awala's default period."""
    now = workflow.now()
    return OutgoingMessage(
        event_id=event_id,
        sender_endpoint_id=sender_endpoint_id,
        recipient_endpoint_id=recipient_endpoint_id,
        content_type=content_type,
        content_b64=content_b64,
        creation_time=now,
        expiry_time=default_expiry(now),
    )


async def emit(message: OutgoingMessage) -> None:
    """Send ``message`` in a local activity, retried until the sink takes it.

    A quick local activity rather than a full one: a round trip to the Temporal server
    per reply would slow every workflow down, and the message's fixed id makes a
    retried emission harmless.
    """
    await workflow.execute_local_activity_method(
        Egress.emit_service_message,
        message,
        start_to_close_timeout=EMIT_TIMEOUT,
        retry_policy=RETRY_FOREVER,
    )
