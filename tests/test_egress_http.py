"""The HTTP sink of the egress against a real HTTP server: what it sends, how it classifies
the sink's answers, and how the egress activity turns them into Temporal's retries."""

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.egress import Egress, SinkRejectedEvent, SinkUnavailable
from activities.sinks import HttpBinarySink
from awala.service_messages import OUTGOING_SERVICE_MESSAGE_TYPE, OutgoingServiceMessage
from contract.messages import DeliveryWindow, OutgoingMessage

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=7)
MESSAGE = OutgoingServiceMessage(
    event_id="event-1",
    sender_id="0server",
    recipient_id="0peer",
    content_type="application/vnd.example",
    content=b"\x00\x01binary\xff",
    creation_time=NOW,
    expiry_time=NOW + timedelta(days=90),
)
# The same message as a workflow hands it to the egress activity.
OUTGOING = OutgoingMessage(
    event_id=MESSAGE.event_id,
    sender_endpoint_id=MESSAGE.sender_id,
    recipient_endpoint_id=MESSAGE.recipient_id,
    content_type=MESSAGE.content_type,
    content_b64=base64.b64encode(MESSAGE.content).decode(),
    creation_time=NOW,
    expiry_time=MESSAGE.expiry_time,
)


@dataclass
class Server:
    url: str
    status: int = 204
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(url="")

    async def receive(request: web.Request) -> web.Response:
        state.received.append((dict(request.headers), await request.read()))
        if 300 <= state.status < 400:
            return web.Response(status=state.status, headers={"Location": "/elsewhere"})
        return web.Response(status=state.status)

    async def elsewhere(_request: web.Request) -> web.Response:
        raise AssertionError("the sink must not follow redirects")

    app = web.Application()
    app.router.add_post("/", receive)
    app.router.add_route("*", "/elsewhere", elsewhere)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}/"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def sink(server: Server) -> AsyncIterator[HttpBinarySink]:
    sink = HttpBinarySink(server.url)
    try:
        yield sink
    finally:
        await sink.close()


async def test_posts_the_event_in_binary_mode(server: Server, sink: HttpBinarySink) -> None:
    await sink.send(MESSAGE)
    await sink.send(MESSAGE)  # a second send reuses the session

    assert len(server.received) == 2
    headers, body = server.received[0]
    assert body == MESSAGE.content
    assert headers["ce-id"] == "event-1"
    assert headers["ce-type"] == OUTGOING_SERVICE_MESSAGE_TYPE
    assert headers["ce-source"] == "0server"
    assert headers["ce-subject"] == "0peer"
    assert headers["Content-Type"] == "application/vnd.example"


async def test_the_egress_activity_sends_the_workflow_s_message(
    server: Server, sink: HttpBinarySink
) -> None:
    await ActivityEnvironment().run(
        Egress(sink, retry_window=WINDOW).emit_service_message, OUTGOING
    )

    [(headers, body)] = server.received
    assert body == MESSAGE.content == OUTGOING.content
    assert (headers["ce-id"], headers["ce-source"], headers["ce-subject"]) == (
        "event-1",
        "0server",
        "0peer",
    )


# The sink says a refusal (a 4xx) from a failure that may pass (anything else, a redirect,
# which is not followed, included); the Web UI shows which by the error's type.
STATUSES = [
    *((status, SinkRejectedEvent) for status in (400, 404, 413)),
    *((status, SinkUnavailable) for status in (302, 408, 429, 500, 503)),
]


@pytest.mark.parametrize(("status", "expected"), STATUSES)
async def test_failures_are_classified_by_the_sink(
    server: Server, sink: HttpBinarySink, status: int, expected: type[Exception]
) -> None:
    server.status = status
    with pytest.raises(expected, match=f"HTTP {status} to event event-1"):
        await sink.send(MESSAGE)
    assert len(server.received) == 1


@pytest.mark.parametrize(("status", "expected"), STATUSES)
async def test_failures_become_temporal_errors_for_retries(
    server: Server, sink: HttpBinarySink, status: int, expected: type[Exception]
) -> None:
    server.status = status
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            Egress(sink, retry_window=WINDOW).emit_service_message, OUTGOING
        )
    # Retryable, a refusal included: workflows.replies bounds the retries by the window.
    assert (raised.value.type, raised.value.non_retryable) == (expected.__name__, False)
    assert raised.value.message == f"Sink answered HTTP {status} to event event-1"
    assert raised.value.__cause__ is None  # as before the split: no chained cause
    assert len(server.received) == 1


async def test_an_unreachable_sink_raises_for_a_retry() -> None:
    sink = HttpBinarySink("http://127.0.0.1:1/")
    try:
        # Any exception but a non-retryable ApplicationError is retried by Temporal.
        with pytest.raises(aiohttp.ClientConnectionError):
            await sink.send(MESSAGE)
    finally:
        await sink.close()


async def test_closing_an_unused_sink_is_harmless() -> None:
    await HttpBinarySink("http://127.0.0.1:1/").close()


async def test_each_failed_attempt_is_logged(server: Server, sink: HttpBinarySink) -> None:
    server.status = 400
    with capture_logs() as lines, pytest.raises(ApplicationError):
        await ActivityEnvironment().run(
            Egress(sink, retry_window=WINDOW).emit_service_message, OUTGOING
        )

    [line] = [line for line in lines if line["event"] == "Service message delivery attempt failed"]
    assert line["log_level"] == "warning"
    assert (line["eventId"], line["recipientId"], line["error"]) == (
        "event-1",
        "0peer",
        "SinkRejectedEvent",
    )
    assert line["reason"] == "Sink answered HTTP 400 to event event-1"


async def test_an_unreachable_sink_is_logged_too() -> None:
    sink = HttpBinarySink("http://127.0.0.1:1/")
    try:
        with capture_logs() as lines, pytest.raises(aiohttp.ClientConnectionError):
            await ActivityEnvironment().run(
                Egress(sink, retry_window=WINDOW).emit_service_message, OUTGOING
            )
    finally:
        await sink.close()

    [line] = [line for line in lines if line["event"] == "Service message delivery attempt failed"]
    assert line["error"] == "ClientConnectorError"


async def test_the_retry_window_is_the_worker_s(sink: HttpBinarySink) -> None:
    window = await ActivityEnvironment().run(Egress(sink, retry_window=WINDOW).retry_window)

    assert window == DeliveryWindow(seconds=604800.0)
