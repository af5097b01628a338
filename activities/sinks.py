"""Where outgoing service messages go: CloudEvents over HTTP, or Google Pub/Sub.

The adapters behind ``egress.EventSink``: they do the I/O, and report a refusal or an
unavailable sink with the egress's own exception types.
"""

from __future__ import annotations

import asyncio

import aiohttp

from activities.egress import EventSink, SinkRejectedEvent, SinkUnavailable
from awala.cloudevents import event_to_binary_http, event_to_pubsub_message
from awala.service_messages import OutgoingServiceMessage, outgoing_message_to_event
from config import ConfigError, Transport

# Statuses after which the same request may succeed; anything else 4xx means the sink
# refuses this event and will refuse it again.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


def make_sink(transport: Transport, *, sink_url: str | None, pubsub_topic: str | None) -> EventSink:
    """The sink the settings name: the worker's, and the operator commands' resends."""
    if transport is Transport.GOOGLE_PUBSUB:
        return PubSubSink(_required(pubsub_topic, "CE_GPUBSUB_TOPIC"))
    return HttpBinarySink(_required(sink_url, "K_SINK"))


def _required(value: str | None, variable: str) -> str:
    # The settings loaders refuse a configuration without it; this guards against a bug.
    if value is None:
        raise ConfigError([f"{variable} is required"])
    return value


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
        """Raises: SinkRejectedEvent, SinkUnavailable, or aiohttp's errors (unreachable)."""
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
            raise SinkRejectedEvent(detail)
        raise SinkUnavailable(detail)

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
        """Raises: the Pub/Sub client's errors, all retried."""
        pubsub_message = event_to_pubsub_message(outgoing_message_to_event(message))
        future = self._publisher.publish(
            self._topic_path, pubsub_message.data, **pubsub_message.attributes
        )
        await asyncio.wrap_future(future)

    async def close(self) -> None:
        await asyncio.to_thread(self._publisher.stop)
