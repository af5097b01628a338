"""A CloudEvents sink that records and logs every outgoing service message it receives.

Locally it stands where the Awala Internet Endpoint would be (``K_SINK``), so a person
can watch the server's replies; the tests and benchmarks use the same recorder to see
exactly what the server sent. Run it with ``python -m infra.sink --port 8081``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from quart import Quart, Response, request

from awala.cloudevents import event_from_binary_http
from awala.errors import InvalidCloudEvent

logger = logging.getLogger("sink")


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    event_id: str
    event_type: str
    source: str
    subject: str
    content_type: str
    data: bytes
    expiry: str | None
    received_at: float  # time.monotonic()


class EventRecorder:
    """Keeps every event received, in order, and lets async code wait for some to arrive."""

    def __init__(self) -> None:
        self.events: list[ReceivedEvent] = []
        # The id of every CloudEvent posted, including those the sink refused on purpose.
        self.attempted_ids: list[str] = []
        self._arrived = asyncio.Condition()

    async def add(self, event: ReceivedEvent) -> None:
        async with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()

    async def wait_for(
        self, predicate: Callable[[list[ReceivedEvent]], bool], deadline: float
    ) -> list[ReceivedEvent]:
        """Wait until ``predicate(events)`` holds; return the events. TimeoutError otherwise."""
        async with asyncio.timeout(deadline), self._arrived:
            await self._arrived.wait_for(lambda: predicate(self.events))
            return list(self.events)

    def to(self, recipient_id: str) -> list[ReceivedEvent]:
        return [event for event in self.events if event.subject == recipient_id]


def create_sink_app(recorder: EventRecorder, *, fail_first: int = 0) -> Quart:
    """The sink's web app; ``fail_first`` answers 503 to that many events first (tests retries)."""
    app = Quart(__name__)
    failures_left = [fail_first]

    @app.route("/", methods=["POST"])
    async def receive() -> Response:
        try:
            event = event_from_binary_http(
                dict(request.headers),
                await request.get_data(as_text=False),  # type: ignore[arg-type]
            )
        except InvalidCloudEvent as error:
            logger.warning("Sink refused a request that is not a CloudEvent: %s", error)
            return Response(str(error), 400)
        attributes = event.get_attributes()
        recorder.attempted_ids.append(str(attributes["id"]))
        if failures_left[0] > 0:
            failures_left[0] -= 1
            return Response("Failing on purpose", 503)
        data = event.get_data()
        received = ReceivedEvent(
            event_id=str(attributes["id"]),
            event_type=str(attributes["type"]),
            source=str(attributes.get("source")),
            subject=str(attributes.get("subject")),
            content_type=str(attributes.get("datacontenttype")),
            data=data if isinstance(data, bytes) else b"",
            expiry=attributes.get("expiry"),
            received_at=time.monotonic(),
        )
        await recorder.add(received)
        logger.info(
            "Outgoing service message to %s: %s (id %s) %s",
            received.subject,
            received.content_type,
            received.event_id,
            _preview(received.data),
        )
        return Response("", 202)

    return app


def _preview(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes>"
    return repr(text if len(text) <= 300 else text[:300] + "…")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sink     %(message)s")

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{args.host}:{args.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    asyncio.run(serve(create_sink_app(EventRecorder()), config))


if __name__ == "__main__":
    main()
