"""Building incoming service messages as a Letro agent's endpoint would send them."""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from awala.service_messages import INCOMING_SERVICE_MESSAGE_TYPE
from letro.content_types import PAIRING_REQUEST_TMP

SERVER_ENDPOINT_ID = "0letroserver" + "0" * 52


@dataclass(frozen=True)
class Agent:
    """A Letro user: a VeraId user id, an Awala endpoint id and its identity key."""

    veraid_id: str
    endpoint_id: str
    id_key: bytes

    def legacy_pairing_request(self, contact: Agent) -> bytes:
        key = base64.b64encode(self.id_key).decode()
        return f"{self.veraid_id},{contact.veraid_id},{key}".encode()

    def expected_match_from(self, contact: Agent) -> bytes:
        key = base64.b64encode(contact.id_key).decode()
        return f"{self.veraid_id},{contact.veraid_id},{contact.endpoint_id},{key}".encode()


def new_agent(name: str, domain: str = "applepie.rocks") -> Agent:
    """A fresh agent; the random suffix keeps tests sharing one stack apart."""
    suffix = uuid.uuid4().hex[:10]
    key = hashlib.sha256(suffix.encode()).digest() * 9  # key-sized opaque bytes
    endpoint_id = "0" + hashlib.sha256(key).hexdigest()
    return Agent(veraid_id=f"{name}-{suffix}@{domain}", endpoint_id=endpoint_id, id_key=key)


def binary_event_headers(
    *,
    sender_id: str,
    content_type: str = PAIRING_REQUEST_TMP,
    parcel_id: str | None = None,
    recipient_id: str = SERVER_ENDPOINT_ID,
) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": parcel_id or str(uuid.uuid4()),
        "ce-type": INCOMING_SERVICE_MESSAGE_TYPE,
        "ce-source": sender_id,
        "ce-subject": recipient_id,
        "ce-time": "2026-11-21T10:00:00.000Z",
        "ce-expiry": "2027-02-21T10:00:00.000Z",
        "content-type": content_type,
    }


async def send_pairing_request(
    http: httpx.AsyncClient,
    url: str,
    requester: Agent,
    target: Agent,
    *,
    parcel_id: str | None = None,
) -> httpx.Response:
    return await http.post(
        url,
        headers=binary_event_headers(sender_id=requester.endpoint_id, parcel_id=parcel_id),
        content=requester.legacy_pairing_request(target),
    )


def requests_collection(
    mongo: AsyncMongoClient[dict[str, Any]],
) -> AsyncCollection[dict[str, Any]]:
    """The stored pairing requests of the test session's worker (``MONGODB_DB=letro_test``)."""
    return mongo["letro_test"]["contactpairingrequests"]
