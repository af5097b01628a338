"""A CloudEvents sink that records and logs every outgoing service message it receives.

Locally it stands where the Awala Internet Endpoint would be (``K_SINK``), so a person
can watch the server's replies; the tests and benchmarks use the same recorder to see
exactly what the server sent. Run it with ``python -m infra.sink --port 8081``.

``GET /messages?recipient=<endpoint id>`` returns what it recorded for that recipient (all
recipients without the parameter), oldest first, as JSON with the data in base64: that is
how ``python -m infra demo`` receives the server's replies, as an agent would from its
gateway. The process keeps only the latest ``--keep`` events, so its memory stays bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from quart import Quart, Response, request

from awala.cloudevents import event_from_binary_http
from awala.errors import InvalidCloudEvent

logger = logging.getLogger("sink")

# How many events the sink process keeps for ``GET /messages``: a long local session or a
# benchmark run against it must not grow its memory without end.
DEFAULT_KEEP = 1000
# SinkServer: how long it may take to listen, and to let go of its connections.
_START_SECONDS = 10.0
_STOP_SECONDS = 2.0


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
    """Keeps the events received, in order, and lets async code wait for some to arrive.

    ``keep`` bounds how many events (and attempted ids) are kept, dropping the oldest; the
    tests keep everything (None), the sink process the latest ``DEFAULT_KEEP``.
    """

    def __init__(self, keep: int | None = None) -> None:
        if keep is not None and keep < 1:
            raise ValueError("keep must be a positive number of events")
        self.keep = keep
        self.events: list[ReceivedEvent] = []
        # The id of every CloudEvent posted, including those the sink refused on purpose.
        self.attempted_ids: list[str] = []
        self._arrived = asyncio.Condition()

    def attempted(self, event_id: str) -> None:
        self.attempted_ids.append(event_id)
        self._trim(self.attempted_ids)

    async def add(self, event: ReceivedEvent) -> None:
        async with self._arrived:
            self.events.append(event)
            self._trim(self.events)
            self._arrived.notify_all()

    def _trim(self, items: list[Any]) -> None:
        if self.keep is not None and len(items) > self.keep:
            del items[: len(items) - self.keep]

    async def wait_for(
        self, predicate: Callable[[list[ReceivedEvent]], bool], deadline: float
    ) -> list[ReceivedEvent]:
        """Wait until ``predicate(events)`` holds; return the events. TimeoutError otherwise."""
        async with asyncio.timeout(deadline), self._arrived:
            await self._arrived.wait_for(lambda: predicate(self.events))
            return list(self.events)

    def to(self, recipient_id: str) -> list[ReceivedEvent]:
        return [event for event in self.events if event.subject == recipient_id]


@dataclass
class SinkFaults:
    """Faults the caller switches on and off while the sink runs (fault tests, chaos).

    ``status``: answered to every event instead of taking it (a 4xx or 5xx), while set.
    ``answered``: how many events got each such status, to prove the fault was met.
    """

    status: int | None = None
    answered: dict[int, int] = field(default_factory=dict)


def create_sink_app(
    recorder: EventRecorder,
    *,
    fail_first: int = 0,
    refuse: Mapping[str, int] | None = None,
    faults: SinkFaults | None = None,
) -> Quart:
    """The sink's web app, and the faults it can inject (for tests).

    ``fail_first`` answers 503 to that many events first. ``refuse`` maps recipients (the
    events' ``subject``) to the status answered instead of taking their events, for as long
    as the mapping (which the caller may change) holds them. ``faults``: see ``SinkFaults``.
    """
    app = Quart(__name__)
    failures_left = [fail_first]
    refused = refuse if refuse is not None else {}
    switched = faults if faults is not None else SinkFaults()

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
        recorder.attempted(str(attributes["id"]))
        if failures_left[0] > 0:
            failures_left[0] -= 1
            return Response("Failing on purpose", 503)
        if (failing := switched.status) is not None:
            switched.answered[failing] = switched.answered.get(failing, 0) + 1
            return Response("Failing on purpose", failing)
        status = refused.get(str(attributes.get("subject")))
        if status is not None:
            return Response("Refusing this recipient on purpose", status)
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

    @app.get("/messages")
    async def messages() -> dict[str, Any]:
        recipient = request.args.get("recipient")
        events = recorder.events if recipient is None else recorder.to(recipient)
        return {"messages": [event_json(event) for event in events]}

    return app


class SinkServer:
    """The recording sink served in this process on a fixed port, which can be taken down
    (its port then refuses connections) and brought back on the same port."""

    def __init__(
        self, recorder: EventRecorder, port: int, faults: SinkFaults | None = None
    ) -> None:
        self.recorder = recorder
        self.port = port
        self.faults = faults if faults is not None else SinkFaults()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        if self._task is not None:
            raise RuntimeError("the sink already runs")
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = None
        config.errorlog = None
        self._stop = asyncio.Event()
        app = create_sink_app(self.recorder, faults=self.faults)
        self._task = asyncio.create_task(serve(app, config, shutdown_trigger=self._stop.wait))
        await accepting(self.port, _START_SECONDS)

    async def stop(self) -> None:
        """Close the port; requests in progress are cut off, as when the process dies."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        # Hypercorn waits for open connections to finish; a dead sink would not.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, timeout=_STOP_SECONDS)


async def accepting(port: int, seconds: float) -> None:
    """Wait until something accepts connections on the loopback ``port``."""
    async with asyncio.timeout(seconds):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return


def event_json(event: ReceivedEvent) -> dict[str, Any]:
    """An event as ``GET /messages`` lists it (CloudEvents attribute names, data in base64)."""
    return {
        "id": event.event_id,
        "type": event.event_type,
        "source": event.source,
        "subject": event.subject,
        "datacontenttype": event.content_type,
        "expiry": event.expiry,
        "data": base64.b64encode(event.data).decode("ascii"),
    }


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
    parser.add_argument(
        "--keep", type=int, default=DEFAULT_KEEP, help="how many of the latest events to keep"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sink     %(message)s")

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{args.host}:{args.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    asyncio.run(serve(create_sink_app(EventRecorder(keep=args.keep)), config))


if __name__ == "__main__":
    main()
