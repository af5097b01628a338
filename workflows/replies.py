"""How every workflow sends a service message: the one place that calls the egress.

Call these from workflow code only: they read the workflow's clock and identity.

Delivery never fails a workflow. A message is first tried in a quick local activity, which
is all a healthy sink ever needs. If that fails (at once for a refusal, a 4xx, or after a
few seconds of retries for anything else), the message is retried in a regular activity,
with capped backoff, for the worker's ``EGRESS_RETRY_SECONDS``: each pending attempt and
its last failure show in the Web UI. If the window closes too, the message is kept in
MongoDB for an operator (``python -m admin undelivered``) and the workflow carries on.

The window is the worker's setting, read through a local activity whose result the
history records: a replay, or a worker configured otherwise, makes the same decision.
It is read only once delivery has failed, so a workflow whose messages go through issues
exactly the commands it always did, and histories recorded before still replay.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.exceptions import CancelledError as TemporalCancelled
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from activities.egress import Egress, SinkRejectedEvent, log_fields
    from activities.undelivered import UndeliveredMessages
    from awala.service_messages import default_expiry
    from contract.messages import OutgoingMessage, UndeliveredMessage
    from metrics import EGRESS_UNDELIVERED, content_type_label, count

# For steps that must eventually happen however long the outage lasts (a decided reply,
# a stored request, a compensation): retried with backoff and no deadline; the Web UI
# shows the attempts.
RETRY_FOREVER = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
EMIT_TIMEOUT = timedelta(seconds=15)

# The quick attempts: a blip of the sink is absorbed without a round trip to the Temporal
# server, and a refusal goes straight to the durable retries, where it can be seen.
_LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=4),
    non_retryable_error_types=[SinkRejectedEvent.__name__],
)
# Well under the SDK's local retry threshold (one minute), so no timer enters the history.
_LOCAL_WINDOW = timedelta(seconds=20)
# The durable retries: server-side, so a week of them adds no event to the history.
_DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
_KEEP_TIMEOUT = timedelta(seconds=10)


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


async def emit(message: OutgoingMessage, *, veraid_ids: Sequence[str] = ()) -> bool:
    """Send ``message``; True once the sink took it, False if it was kept undelivered.

    First in a quick local activity: a round trip to the Temporal server per reply would
    slow every workflow down, and the message's fixed id makes a retried emission
    harmless. ``veraid_ids``: whom the message is about, recorded if it is kept, so that
    purging an id's data finds it.
    """
    first_attempt = workflow.now()
    try:
        await workflow.execute_local_activity_method(
            Egress.emit_service_message,
            message,
            start_to_close_timeout=EMIT_TIMEOUT,
            schedule_to_close_timeout=_LOCAL_WINDOW,
            retry_policy=_LOCAL_RETRY,
        )
        return True
    # A local activity's failure is the activity's own error (an ApplicationError, or a
    # TimeoutError once its window closed), not an ActivityError around it.
    except FailureError as error:
        if isinstance(error, TemporalCancelled):
            raise
        # Each attempt was logged by the activity.
    try:
        await _retry_durably(message)
        return True
    except ActivityError as error:
        await _keep(message, error, first_attempt, veraid_ids)
        return False


async def _retry_durably(message: OutgoingMessage) -> None:
    window = await workflow.execute_local_activity_method(
        Egress.retry_window,
        start_to_close_timeout=_KEEP_TIMEOUT,
        retry_policy=RETRY_FOREVER,  # it only reads the worker's setting
    )
    await workflow.execute_activity_method(
        Egress.emit_service_message,
        message,
        start_to_close_timeout=EMIT_TIMEOUT,
        schedule_to_close_timeout=timedelta(seconds=window.seconds),
        retry_policy=_DELIVERY_RETRY,
        summary=f"Delivering {message.content_type}",
    )


async def _keep(
    message: OutgoingMessage, error: ActivityError, first_attempt: datetime, ids: Sequence[str]
) -> None:
    reason = failure_reason(error)
    await workflow.execute_local_activity_method(
        UndeliveredMessages.keep,
        UndeliveredMessage(
            message=message,
            workflow_id=workflow.info().workflow_id,
            reason=reason,
            first_failure=first_attempt,
            last_failure=workflow.now(),
            veraid_ids=list(ids),
        ),
        start_to_close_timeout=_KEEP_TIMEOUT,
        retry_policy=RETRY_FOREVER,  # MongoDB down: wait for it, the message must not be lost
    )
    count(
        workflow.metric_meter(),
        EGRESS_UNDELIVERED,
        content_type=content_type_label(message.content_type),
    )
    workflow.logger.error(
        "Service message not delivered within the retry window; kept for an operator",
        extra={**log_fields(message), "reason": reason},
    )


def failure_reason(error: FailureError) -> str:
    """A Temporal failure's causes in one line, outermost first.

    Once the retries stop, the cause is usually the last attempt's own error
    (``SinkRejectedEvent: Sink answered HTTP 400 ...``); when the deadline cut an attempt
    short, a timeout whose cause is the failure before it (``schedule-to-close timeout,
    after: SinkUnavailable: ...``).
    """
    links: list[str] = []
    cause: BaseException | None = error.cause
    while cause is not None:
        if isinstance(cause, ApplicationError):
            links.append(f"{cause.type or 'Error'}: {cause.message}")
        elif isinstance(cause, TemporalTimeout) and cause.type is not None:
            links.append(f"{cause.type.name.lower().replace('_', '-')} timeout")
        else:
            links.append(str(cause))
        cause = cause.__cause__
    return ", after: ".join(links) or str(error)
