"""Pending contact pairing requests in MongoDB, in the original server's collection shape,
and what the operator commands read and delete there.

MongoDB is the pending requests' durable record, and it is read back: a pair workflow's first
store on a fresh start also returns what the collection holds for the pair, so a request
written by the original server, or by a run Temporal terminated, still matches.

Which protocol a document belongs to: ours carry ``kind: "veraid"`` for VeraId requests and
no kind (or null) for legacy ones. The original server wrote no kind for either, but only its
VeraId flow set ``signatureBundle``; so a document without a kind is a VeraId request if it
has a ``signatureBundle``, a legacy one otherwise. Storing a VeraId request over such a
document marks it ``kind: "veraid"``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from bson.binary import Binary
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure
from temporalio import activity

from contract.pairing import PairingRequestsToDelete, PendingPairingRequest, StoredPair

logger = structlog.get_logger(__name__)

COLLECTION_NAME = "contactpairingrequests"
# MongoDB's own expiry is only a safety net behind the workflows' timers, so it fires a
# day after them.
TTL_INDEX_MARGIN = timedelta(days=1)
_INDEX_OPTIONS_CONFLICT = 85
UNIQUE_INDEX_NAME = "requesterVeraId_1_targetVeraId_1_kind_1"
_ORIGINAL_UNIQUE_INDEX_NAME = "requesterVeraId_1_targetVeraId_1"
LEGACY_KIND = "legacy"
VERAID_KIND = "veraid"
# A VeraId request as the original server stored it: no kind, a SignatureBundle.
_ORIGINAL_VERAID: dict[str, Any] = {"kind": None, "signatureBundle": {"$exists": True}}


def _kind_filter(kind: str) -> dict[str, Any]:
    """The documents of protocol ``kind``, whoever wrote them (see the module's docstring)."""
    if kind == LEGACY_KIND:
        # Legacy documents keep the original server's shape, without a kind.
        return {"kind": None, "signatureBundle": {"$exists": False}}
    if kind == VERAID_KIND:
        return {"$or": [{"kind": VERAID_KIND}, _ORIGINAL_VERAID]}
    return {"kind": kind}


def _kind_of(document: dict[str, Any]) -> str:
    kind = document.get("kind")
    if kind:
        return str(kind)
    return VERAID_KIND if "signatureBundle" in document else LEGACY_KIND


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
    async def store(self, request: PendingPairingRequest) -> StoredPair | None:
        """Store ``request``; with ``read_counterpart``, say what was there for the pair."""
        try:
            stored = await self._upsert(request)
        except DuplicateKeyError:
            # A legacy request whose ids have an original-server VeraId document, which the
            # unique index, blind to the missing kind, takes for the same one: mark that one
            # VeraId (which it is), then store again.
            await self._collection.update_many(
                {
                    "requesterVeraId": request.requester_veraid_id,
                    "targetVeraId": request.target_veraid_id,
                    **_ORIGINAL_VERAID,
                },
                {"$set": {"kind": VERAID_KIND}},
            )
            stored = await self._upsert(request)
        if not request.read_counterpart:
            return None
        counterpart = await self._collection.find_one(
            {
                "requesterVeraId": request.target_veraid_id,
                "targetVeraId": request.requester_veraid_id,
                **_kind_filter(request.kind),
            }
        )
        first_received = utc(stored["creationDate"]) if stored else request.first_received
        return StoredPair(
            first_received=first_received,
            counterpart=None if counterpart is None else _pending(counterpart, request.kind),
        )

    async def _upsert(self, request: PendingPairingRequest) -> dict[str, Any] | None:
        # An upsert on the (requester, target) key, so a retry or a resend rewrites the
        # same document; the creation date is set once, so a resend does not extend it.
        # Read back only when asked: the hot path keeps its one plain update.
        query = {
            "requesterVeraId": request.requester_veraid_id,
            "targetVeraId": request.target_veraid_id,
            **_kind_filter(request.kind),
        }
        update = {
            "$set": {
                "requesterEndpointId": request.requester_endpoint_id,
                "requesterIdKey": Binary(base64.b64decode(request.requester_id_key_b64)),
                **({"kind": request.kind} if request.kind != LEGACY_KIND else {}),
                **(
                    {"signatureBundle": Binary(base64.b64decode(request.signature_bundle_b64))}
                    if request.signature_bundle_b64
                    else {}
                ),
            },
            "$setOnInsert": {"creationDate": request.first_received, "__v": 0},
        }
        if not request.read_counterpart:
            await self._collection.update_one(query, update, upsert=True)
            return None
        stored: dict[str, Any] | None = await self._collection.find_one_and_update(
            query,
            update,
            upsert=True,
            projection={"_id": False, "creationDate": True},
            return_document=ReturnDocument.AFTER,
        )
        return stored

    @activity.defn(name="delete_pairing_requests")
    async def delete(self, pair: PairingRequestsToDelete) -> None:
        a, b = pair.veraid_id_a, pair.veraid_id_b
        result = await self._collection.delete_many(
            {
                "$and": [
                    _kind_filter(pair.kind),
                    {
                        "$or": [
                            {"requesterVeraId": a, "targetVeraId": b},
                            {"requesterVeraId": b, "targetVeraId": a},
                        ]
                    },
                ]
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
            kind=_kind_of(document),
            requester_veraid_id=document["requesterVeraId"],
            target_veraid_id=document["targetVeraId"],
            requester_endpoint_id=document.get("requesterEndpointId", ""),
            first_received=utc(document["creationDate"]),
        )


def _pending(document: dict[str, Any], kind: str) -> PendingPairingRequest:
    """A stored request as the workflow takes it up; the key and bundle as base64."""
    bundle = document.get("signatureBundle")
    return PendingPairingRequest(
        requester_veraid_id=document["requesterVeraId"],
        target_veraid_id=document["targetVeraId"],
        requester_endpoint_id=document.get("requesterEndpointId", ""),
        requester_id_key_b64=base64.b64encode(bytes(document.get("requesterIdKey", b""))).decode(),
        first_received=utc(document["creationDate"]),
        kind=kind,
        signature_bundle_b64=base64.b64encode(bytes(bundle)).decode() if bundle else None,
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
