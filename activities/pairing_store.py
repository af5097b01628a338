"""Pending contact pairing requests in MongoDB, in the original server's collection shape,
and what the operator commands read and delete there."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from bson.binary import Binary
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure
from temporalio import activity

from contract.pairing import PairingRequestsToDelete, PendingPairingRequest

logger = structlog.get_logger(__name__)

COLLECTION_NAME = "contactpairingrequests"
# MongoDB's own expiry is only a safety net behind the workflows' timers, so it fires a
# day after them.
TTL_INDEX_MARGIN = timedelta(days=1)
_INDEX_OPTIONS_CONFLICT = 85
UNIQUE_INDEX_NAME = "requesterVeraId_1_targetVeraId_1_kind_1"
_ORIGINAL_UNIQUE_INDEX_NAME = "requesterVeraId_1_targetVeraId_1"
LEGACY_KIND = "legacy"


def _kind_filter(kind: str) -> str | None:
    # Legacy documents keep the original server's shape, without a kind.
    return None if kind == LEGACY_KIND else kind


async def ensure_indexes(database: AsyncDatabase[dict[str, Any]], request_ttl: timedelta) -> None:
    """Create the collection's indexes, or bring the TTL in line with ``request_ttl``."""
    collection = database[COLLECTION_NAME]
    # Unique per protocol: VeraId and legacy requests of the same ids are different requests.
    # The new index is built before the original server's one is dropped, so uniqueness
    # holds throughout a rolling upgrade; legacy documents have no "kind" field, which the
    # index (and the legacy filters, {kind: null}) read as null.
    await collection.create_index(
        [("requesterVeraId", ASCENDING), ("targetVeraId", ASCENDING), ("kind", ASCENDING)],
        unique=True,
        name=UNIQUE_INDEX_NAME,
    )
    existing = await collection.index_information()
    if _ORIGINAL_UNIQUE_INDEX_NAME in existing:
        await collection.drop_index(_ORIGINAL_UNIQUE_INDEX_NAME)
    expire_after = int((request_ttl + TTL_INDEX_MARGIN).total_seconds())
    try:
        await collection.create_index("creationDate", expireAfterSeconds=expire_after)
    except OperationFailure as error:
        if error.code != _INDEX_OPTIONS_CONFLICT:
            raise
        await database.command(
            "collMod",
            COLLECTION_NAME,
            index={"keyPattern": {"creationDate": 1}, "expireAfterSeconds": expire_after},
        )


class PairingRequestStore:
    """Activities that keep the stored requests in step with the pairing workflows."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._collection = collection

    @activity.defn(name="store_pending_pairing_request")
    async def store(self, request: PendingPairingRequest) -> None:
        # An upsert on the (requester, target) key, so a retry or a resend rewrites the
        # same document; the creation date is set once, so a resend does not extend it.
        await self._collection.update_one(
            {
                "requesterVeraId": request.requester_veraid_id,
                "targetVeraId": request.target_veraid_id,
                "kind": _kind_filter(request.kind),
            },
            {
                "$set": {
                    "requesterEndpointId": request.requester_endpoint_id,
                    "requesterIdKey": Binary(base64.b64decode(request.requester_id_key_b64)),
                    **(
                        {"signatureBundle": Binary(base64.b64decode(request.signature_bundle_b64))}
                        if request.signature_bundle_b64
                        else {}
                    ),
                },
                "$setOnInsert": {"creationDate": request.first_received, "__v": 0},
            },
            upsert=True,
        )

    @activity.defn(name="delete_pairing_requests")
    async def delete(self, pair: PairingRequestsToDelete) -> None:
        a, b = pair.veraid_id_a, pair.veraid_id_b
        result = await self._collection.delete_many(
            {
                "kind": _kind_filter(pair.kind),
                "$or": [
                    {"requesterVeraId": a, "targetVeraId": b},
                    {"requesterVeraId": b, "targetVeraId": a},
                ],
            }
        )
        logger.debug("Pairing requests deleted", count=result.deleted_count)


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A document of ``contactpairingrequests``, as the operator commands show it."""

    kind: str
    requester_veraid_id: str
    target_veraid_id: str
    requester_endpoint_id: str
    first_received: datetime

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> StoredRequest:
        return cls(
            kind=document.get("kind") or LEGACY_KIND,
            requester_veraid_id=document["requesterVeraId"],
            target_veraid_id=document["targetVeraId"],
            requester_endpoint_id=document.get("requesterEndpointId", ""),
            first_received=utc(document["creationDate"]),
        )


def utc(value: datetime) -> datetime:
    # pymongo returns naive datetimes (in UTC) unless the client is tz-aware.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _naming(veraid_ids: Iterable[str]) -> dict[str, Any]:
    ids = list(veraid_ids)
    return {"$or": [{"requesterVeraId": {"$in": ids}}, {"targetVeraId": {"$in": ids}}]}


async def find_naming(
    collection: AsyncCollection[dict[str, Any]], veraid_ids: Iterable[str]
) -> list[StoredRequest]:
    """The requests naming any of ``veraid_ids``, as requester or target, oldest first."""
    cursor = collection.find(_naming(veraid_ids)).sort("creationDate", ASCENDING)
    return [StoredRequest.from_document(document) async for document in cursor]


async def delete_naming(
    collection: AsyncCollection[dict[str, Any]], veraid_ids: Iterable[str]
) -> int:
    result = await collection.delete_many(_naming(veraid_ids))
    return result.deleted_count
