"""Sending outgoing Awala service messages, as CloudEvents over HTTP or Google Pub/Sub."""

from __future__ import annotations

import asyncio
from typing import Protocol

import aiohttp
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messages import OutgoingMessage
from awala.cloudevents import event_to_binary_http, event_to_pubsub_message
from awala.service_messages import OutgoingServiceMessage, outgoing_message_to_event

logger = structlog.get_logger(__name__)

# Statuses after which the same request may succeed; anything else 4xx means the sink
# refuses this event and will refuse it again.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


class EventSink(Protocol):
    async def send(self, message: OutgoingServiceMessage) -> None: ...

    async def close(self) -> None: ...


class HttpBinarySink:
    """POSTs each event in CloudEvents binary content mode to ``K_SINK``.

    aiohttp rather than httpx, which the rest of the server uses: each pairing match is
    two POSTs from the worker's event loop, and httpx's per-request overhead was a fifth
    of the worker's CPU time under load (profiled with py-spy).
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the event loop it was made in.
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def send(self, message: OutgoingServiceMessage) -> None:
        headers, body = event_to_binary_http(outgoing_message_to_event(message))
        async with self._client().post(
            self._url, headers=headers, data=body, allow_redirects=False
        ) as response:
            status = response.status
            await response.read()  # so the connection goes back to the pool
        if 200 <= status < 300:
            return
        detail = f"Sink answered HTTP {status} to event {message.event_id}"
        if 400 <= status < 500 and status not in _TRANSIENT_STATUSES:
            raise ApplicationError(detail, type="SinkRejectedEvent", non_retryable=True)
        raise ApplicationError(detail, type="SinkUnavailable")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class PubSubSink:
    """Publishes each event to a Pub/Sub topic, with the attributes the endpoint expects."""

    def __init__(self, topic_path: str) -> None:
        # Imported here so deployments on the HTTP transport never load the gRPC stack.
        from google.cloud import pubsub_v1

        self._topic_path = topic_path
        self._publisher = pubsub_v1.PublisherClient()

    async def send(self, message: OutgoingServiceMessage) -> None:
        pubsub_message = event_to_pubsub_message(outgoing_message_to_event(message))
        future = self._publisher.publish(
            self._topic_path, pubsub_message.data, **pubsub_message.attributes
        )
        await asyncio.wrap_future(future)

    async def close(self) -> None:
        await asyncio.to_thread(self._publisher.stop)


class Egress:
    """The activity that emits service messages; one instance per worker, holding the sink."""

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink

    @activity.defn(name="emit_service_message")
    async def emit_service_message(self, message: OutgoingMessage) -> None:
        await self._sink.send(
            OutgoingServiceMessage(
                event_id=message.event_id,
                sender_id=message.sender_endpoint_id,
                recipient_id=message.recipient_endpoint_id,
                content_type=message.content_type,
                content=message.content,
                creation_time=message.creation_time,
                expiry_time=message.expiry_time,
            )
        )
        logger.debug(
            "Service message emitted",
            eventId=message.event_id,
            contentType=message.content_type,
            recipientId=message.recipient_endpoint_id,
            attempt=activity.info().attempt,
        )
