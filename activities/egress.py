"""The activity that sends outgoing Awala service messages, through a sink (``sinks``).

A sink reports failures as :class:`SinkRejectedEvent` (it will refuse this event again) or
:class:`SinkUnavailable` (it may take it later); anything else it raises is transient too.
The activity turns them into what Temporal's retries act on.
"""

from __future__ import annotations

from typing import Protocol

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from awala.service_messages import OutgoingServiceMessage
from contract.messages import OutgoingMessage
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
    """The activity that emits service messages; one instance per worker, holding the sink."""

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink

    @activity.defn(name="emit_service_message")
    async def emit_service_message(self, message: OutgoingMessage) -> None:
        outcome = "error"  # anything else the sink raises propagates, and is retried
        try:
            await self._sink.send(_service_message(message))
            outcome = "delivered"
        except SinkRejectedEvent as error:
            outcome = type(error).__name__
            # Named after the exception, as the Web UI and retry policies know it; from
            # None, as the sink raised it: the failure holds no chained cause.
            raise ApplicationError(
                str(error), type=type(error).__name__, non_retryable=True
            ) from None
        except SinkUnavailable as error:
            outcome = type(error).__name__
            raise ApplicationError(str(error), type=type(error).__name__) from None
        finally:
            count(
                activity.metric_meter(),
                EGRESS_ATTEMPTS,
                outcome=outcome,
                content_type=content_type_label(message.content_type),
            )
        logger.debug(
            "Service message emitted",
            eventId=message.event_id,
            contentType=message.content_type,
            recipientId=message.recipient_endpoint_id,
            attempt=activity.info().attempt,
        )


def _service_message(message: OutgoingMessage) -> OutgoingServiceMessage:
    return OutgoingServiceMessage(
        event_id=message.event_id,
        sender_id=message.sender_endpoint_id,
        recipient_id=message.recipient_endpoint_id,
        content_type=message.content_type,
        content=message.content,
        creation_time=message.creation_time,
        expiry_time=message.expiry_time,
    )
