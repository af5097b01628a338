"""The activity that sends outgoing Awala service messages, through a sink (``sinks``).

A sink reports failures as :class:`SinkRejectedEvent` (it will refuse this event again) or
:class:`SinkUnavailable` (it may take it later); anything else it raises is transient too.
The activity turns them into what Temporal's retries act on. Every error is retryable in
Temporal's view, a refusal included: a sink that refuses an event today (a misconfigured
endpoint, an expired credential) may take it tomorrow, and ``workflows.replies`` decides
how long to try, from the window this activity's worker was configured with.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from awala.service_messages import OutgoingServiceMessage
from contract.messages import DeliveryWindow, OutgoingMessage
from metrics import EGRESS_ATTEMPTS, content_type_label, count

logger = structlog.get_logger(__name__)


class SinkRejectedEvent(Exception):
    """The sink refused the event and will refuse it again."""


class SinkUnavailable(Exception):
    """The sink did not take the event this time; it may later."""


class EventSink(Protocol):
    async def send(self, message: OutgoingServiceMessage) -> None:
        """Raises: SinkRejectedEvent, SinkUnavailable, or any error of the transport."""

    async def close(self) -> None: ...


class Egress:
    """The activities that emit service messages; one instance per worker, holding the sink
    and the worker's retry window (``EGRESS_RETRY_SECONDS``)."""

    def __init__(self, sink: EventSink, *, retry_window: timedelta) -> None:
        self._sink = sink
        self._retry_window = retry_window

    @activity.defn(name="egress_retry_window")
    async def retry_window(self) -> DeliveryWindow:
        """The worker's setting, for workflows: as a local activity's result it is recorded
        in the history, so a replay (or another worker's setting) cannot change a decision."""
        return DeliveryWindow(self._retry_window.total_seconds())

    @activity.defn(name="emit_service_message")
    async def emit_service_message(self, message: OutgoingMessage) -> None:
        outcome = "error"  # anything else the sink raises propagates, and is retried
        try:
            await self._sink.send(service_message(message))
            outcome = "delivered"
        except (SinkRejectedEvent, SinkUnavailable) as error:
            outcome = type(error).__name__
            _log_failure(message, error)
            # Named after the exception, as the Web UI and retry policies know it; from
            # None, as the sink raised it: the failure holds no chained cause.
            raise ApplicationError(str(error), type=type(error).__name__) from None
        except Exception as error:
            _log_failure(message, error)
            raise
        finally:
            count(
                activity.metric_meter(),
                EGRESS_ATTEMPTS,
                outcome=outcome,
                content_type=content_type_label(message.content_type),
            )
        logger.debug(
            "Service message emitted", **log_fields(message), attempt=activity.info().attempt
        )


def log_fields(message: OutgoingMessage) -> dict[str, str]:
    """What every log line about a message says of it."""
    return {
        "eventId": message.event_id,
        "contentType": message.content_type,
        "recipientId": message.recipient_endpoint_id,
    }


def _log_failure(message: OutgoingMessage, error: Exception) -> None:
    # One line per failed attempt, whichever phase (local or regular activity) it was in.
    info = activity.info()
    logger.warning(
        "Service message delivery attempt failed",
        **log_fields(message),
        attempt=info.attempt,
        local=info.is_local,
        error=type(error).__name__,
        reason=str(error),
    )


def service_message(message: OutgoingMessage) -> OutgoingServiceMessage:
    """The message as the sinks take it."""
    return OutgoingServiceMessage(
        event_id=message.event_id,
        sender_id=message.sender_endpoint_id,
        recipient_id=message.recipient_endpoint_id,
        content_type=message.content_type,
        content=message.content,
        creation_time=message.creation_time,
        expiry_time=message.expiry_time,
    )
