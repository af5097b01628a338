"""The stored pairing requests: the kind discriminator and the index migration, on real MongoDB."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from activities.pairing_store import (
    COLLECTION_NAME,
    UNIQUE_INDEX_NAME,
    PairingRequestStore,
    ensure_indexes,
)
from contract.pairing import PairingRequestsToDelete, PendingPairingRequest

pytestmark = pytest.mark.integration


def request(kind: str, endpoint: str, bundle: bytes | None = None) -> PendingPairingRequest:
    return PendingPairingRequest(
        requester_veraid_id="alice@example.com",
        target_veraid_id="bob@example.com",
        requester_endpoint_id=endpoint,
        requester_id_key_b64=base64.b64encode(b"key").decode(),
        first_received=datetime.now(UTC).replace(microsecond=0),
        kind=kind,
        signature_bundle_b64=base64.b64encode(bundle).decode() if bundle else None,
    )


async def test_original_index_is_replaced_and_protocols_are_kept_apart(
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    database = mongo_client[f"letro_migration_{uuid.uuid4().hex[:8]}"]
    collection = database[COLLECTION_NAME]
    # What the original server (and this one before VeraId pairing) left behind.
    await collection.create_index([("requesterVeraId", 1), ("targetVeraId", 1)], unique=True)
    await collection.insert_one(
        {
            "requesterVeraId": "alice@example.com",
            "targetVeraId": "bob@example.com",
            "requesterEndpointId": "0old",
            "requesterIdKey": b"key",
            "creationDate": datetime.now(UTC),
            "__v": 0,
        }
    )

    await ensure_indexes(database, timedelta(days=90))
    await ensure_indexes(database, timedelta(days=90))  # idempotent

    indexes = await collection.index_information()
    assert UNIQUE_INDEX_NAME in indexes
    assert "requesterVeraId_1_targetVeraId_1" not in indexes
    store = PairingRequestStore(collection)
    # A legacy resend updates the original document (it has no kind at all) ...
    await store.store(request("legacy", "0legacy"))
    # ... and a VeraId request of the same ids is a separate document.
    await store.store(request("veraid", "0veraid", b"bundle"))
    documents = {doc.get("kind"): doc async for doc in collection.find({})}
    assert set(documents) == {None, "veraid"}
    assert documents[None]["requesterEndpointId"] == "0legacy"
    assert "signatureBundle" not in documents[None]
    assert bytes(documents["veraid"]["signatureBundle"]) == b"bundle"

    await store.delete(PairingRequestsToDelete("bob@example.com", "alice@example.com", "veraid"))
    assert [doc.get("kind") async for doc in collection.find({})] == [None]
    await mongo_client.drop_database(database.name)
