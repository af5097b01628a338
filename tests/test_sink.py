"""The local sink's read endpoint, ``GET /messages``, and its bounded memory, over real HTTP."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from awala.cloudevents import event_to_binary_http
from awala.service_messages import OutgoingServiceMessage, default_expiry, outgoing_message_to_event
from infra.sink import EventRecorder
from tests.conftest import serve_sink


async def _post(http: httpx.AsyncClient, url: str, recipient: str, data: bytes) -> str:
    """POST an outgoing service message as the worker does; return its event id."""
    now = datetime.now(UTC)
    message = OutgoingServiceMessage(
        event_id=str(uuid.uuid4()),
        sender_id="0server",
        recipient_id=recipient,
        content_type="application/vnd.relaycorp.letro.pairing-auth",
        content=data,
        creation_time=now,
        expiry_time=default_expiry(now),
    )
    headers, body = event_to_binary_http(outgoing_message_to_event(message))
    response = await http.post(url, headers=headers, content=body)
    assert response.status_code == 202
    return message.event_id


async def _listed(http: httpx.AsyncClient, url: str, **params: str) -> list[dict[str, object]]:
    response = await http.get(url + "messages", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    messages: list[dict[str, object]] = response.json()["messages"]
    return messages


async def test_messages_are_listed_per_recipient_with_their_bytes() -> None:
    binary = bytes(range(256))  # not UTF-8: the bytes must come back exactly
    async with serve_sink() as sink, httpx.AsyncClient() as http:
        first = await _post(http, sink.url, "0alice", binary)
        other = await _post(http, sink.url, "0bob", b"for bob")
        second = await _post(http, sink.url, "0alice", b"")
        alices = await _listed(http, sink.url, recipient="0alice")
        everyone = await _listed(http, sink.url)
        nobody = await _listed(http, sink.url, recipient="0nobody")

    assert [m["id"] for m in alices] == [first, second]  # oldest first
    assert base64.b64decode(str(alices[0]["data"])) == binary
    assert alices[1]["data"] == ""
    assert alices[0] == {
        "id": first,
        "type": "tech.relaycorp.awala.endpoint-internet.outgoing-service-message",
        "source": "0server",
        "subject": "0alice",
        "datacontenttype": "application/vnd.relaycorp.letro.pairing-auth",
        "expiry": alices[0]["expiry"],
        "data": base64.b64encode(binary).decode(),
    }
    assert str(alices[0]["expiry"]).endswith("Z")
    assert [m["id"] for m in everyone] == [first, other, second]
    assert nobody == []


async def test_only_the_latest_events_are_kept() -> None:
    async with serve_sink(keep=2) as sink, httpx.AsyncClient() as http:
        ids = [await _post(http, sink.url, "0alice", f"{n}".encode()) for n in range(5)]
        listed = await _listed(http, sink.url, recipient="0alice")
    assert [m["id"] for m in listed] == ids[-2:]
    assert sink.recorder.attempted_ids == ids[-2:]


def test_keeping_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        EventRecorder(keep=0)
