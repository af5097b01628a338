"""The ingress's answers to what is not a good message, and to Temporal or MongoDB being away."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from config import load_settings
from infra.agents import new_agent
from infra.services import MongoDB, free_port
from ingress.app import create_app
from tests.conftest import Ingress, StartIngress
from tests.helpers import binary_event_headers

pytestmark = pytest.mark.integration


async def test_health_check_answers_when_backends_are_up(
    http: httpx.AsyncClient, ingress: Ingress
) -> None:
    response = await http.get(ingress.url)
    assert response.status_code == 200
    assert response.text == "Success! It works."
    assert response.headers["content-type"].startswith("text/plain")
    head = await http.head(ingress.url)
    assert head.status_code == 200


async def test_post_without_cloudevent_is_refused(
    http: httpx.AsyncClient, ingress: Ingress
) -> None:
    response = await http.post(
        ingress.url, content=b"hello", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid CloudEvent"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (
            {"ce-type": "not.tech.relaycorp.awala.endpoint-internet.incoming-service-message"},
            "Invalid event type",
        ),
        ({"ce-subject": None}, "Missing event subject"),
        ({"content-type": None}, "Missing event data content type"),
    ],
    ids=["wrong type", "no subject", "no content type"],
)
async def test_invalid_incoming_service_message_is_refused(
    http: httpx.AsyncClient, ingress: Ingress, change: dict[str, str | None], detail: str
) -> None:
    headers: dict[str, str | None] = {
        **binary_event_headers(sender_id=new_agent("a").endpoint_id),
        **change,
    }
    response = await http.post(
        ingress.url, content=b"x", headers={k: v for k, v in headers.items() if v is not None}
    )
    assert response.status_code == 400
    assert response.json() == {"message": "Invalid incoming service message", "detail": detail}


async def test_unsupported_content_type_is_refused(
    http: httpx.AsyncClient, ingress: Ingress
) -> None:
    headers = binary_event_headers(sender_id=new_agent("a").endpoint_id, content_type="text/plain")
    response = await http.post(ingress.url, content=b"hi", headers=headers)
    assert response.status_code == 400
    assert response.json()["message"] == "Unsupported service message content type"


async def test_oversized_body_is_refused_before_it_is_read(ingress: Ingress) -> None:
    # Only the headers are sent: the ingress must refuse on the declared length alone,
    # without waiting for (or buffering) a megabyte it will not use. A client uploading
    # the whole body could see the connection close mid-upload instead of the answer.
    url = httpx.URL(ingress.url)
    headers = binary_event_headers(sender_id=new_agent("a").endpoint_id)
    head = ["POST / HTTP/1.1", f"Host: {url.host}:{url.port}", f"Content-Length: {1024 * 1024 + 1}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    assert status_line.split()[1] == b"413"


async def test_unreachable_temporal_gives_503_so_the_broker_retries(
    http: httpx.AsyncClient, start_ingress: StartIngress
) -> None:
    nowhere = start_ingress(TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
    alice, bob = new_agent("alice"), new_agent("bob")
    response = await http.post(
        nowhere.url,
        headers=binary_event_headers(sender_id=alice.endpoint_id),
        content=alice.legacy_pairing_request(bob),
    )
    assert response.status_code == 503
    health = await http.get(nowhere.url)
    assert health.status_code == 503
    assert "Temporal unreachable" in health.text


async def test_unreachable_mongodb_makes_health_check_fail(
    http: httpx.AsyncClient, start_ingress: StartIngress
) -> None:
    no_db = start_ingress(MONGODB_URI=f"mongodb://127.0.0.1:{free_port()}/?directConnection=true")
    health = await http.get(no_db.url)
    assert health.status_code == 503
    assert "MongoDB unreachable" in health.text


async def test_request_id_is_logged(http: httpx.AsyncClient, ingress: Ingress) -> None:
    headers = binary_event_headers(sender_id=new_agent("a").endpoint_id, content_type="text/plain")
    await http.post(
        ingress.url, content=b"hi", headers={**headers, "X-Request-Id": "trace-me-1234"}
    )
    assert ingress.process.log_file is not None
    log = ingress.process.log_file.read_text()
    # The ingress's own lines (at LOG_LEVEL=debug, pymongo's carry the request id too).
    [line] = [
        line
        for line in log.splitlines()
        if "trace-me-1234" in line and '"logger": "ingress"' in line
    ]
    assert '"requestId": "trace-me-1234"' in line
    assert "Unsupported service message content type" in line


class _BuggyTemporalClient:
    """Stands in for a client whose call fails in a way no handler expects (a bug)."""

    async def start_workflow(self, *args: object, **kwargs: object) -> None:
        raise ValueError("unexpected")


async def test_an_unexpected_error_is_a_503_not_a_500(mongodb: MongoDB) -> None:
    # A real MongoDB: the ingress looks the parcel up there before handing it over.
    settings = load_settings("ingress", {"VERSION": "test", "MONGODB_URI": mongodb.uri})
    app = create_app(settings, temporal_client=_BuggyTemporalClient())  # type: ignore[arg-type]
    alice, bob = new_agent("alice"), new_agent("bob")
    async with app.test_app() as test_app:
        response = await test_app.test_client().post(
            "/",
            headers=binary_event_headers(sender_id=alice.endpoint_id),
            data=alice.legacy_pairing_request(bob),
        )
    assert response.status_code == 503
    assert (await response.get_json())["detail"] == "ValueError"
