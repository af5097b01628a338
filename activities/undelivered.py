"""Messages the egress could not deliver within its retry window, kept in MongoDB for an
operator (``undeliveredmessages``), and what the operator commands read and delete there.

One document per outgoing event id, so a retried ``keep`` rewrites the same document. A
document holds the whole message (its content is personal data: a match carries the
contact's endpoint and key), so MongoDB deletes it at the message's own expiry: past it,
the Awala endpoint would refuse the message anyway.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from bson.binary import Binary
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from temporalio import activity

from activities.egress import log_fields
from activities.pairing_store import utc
from contract.messages import OutgoingMessage, UndeliveredMessage

logger = structlog.get_logger(__name__)

COLLECTION_NAME = "undeliveredmessages"


async def ensure_indexes(database: AsyncDatabase[dict[str, Any]]) -> None:
    collection = database[COLLECTION_NAME]
    await collection.create_index("eventId", unique=True)
    await collection.create_index("veraidIds")
    await collection.create_index([("expiryTime", ASCENDING)], expireAfterSeconds=0)


class UndeliveredMessages:
    """The activity that keeps a message whose delivery retries ran out."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._collection = collection

    @activity.defn(name="keep_undelivered_message")
    async def keep(self, kept: UndeliveredMessage) -> None:
        message = kept.message
        await self._collection.update_one(
            {"eventId": message.event_id},
            {
                "$set": {
                    "senderEndpointId": message.sender_endpoint_id,
                    "recipientEndpointId": message.recipient_endpoint_id,
                    "contentType": message.content_type,
                    "content": Binary(message.content),
                    "creationTime": message.creation_time,
                    "expiryTime": message.expiry_time,
                    "reason": kept.reason,
                    "lastFailure": kept.last_failure,
                    "workflowId": kept.workflow_id,
                    "veraidIds": kept.veraid_ids,
                },
                # A message kept again (a workflow resending the same reply) keeps the date
                # its trouble started.
                "$setOnInsert": {"firstFailure": kept.first_failure},
            },
            upsert=True,
        )
        logger.error(
            "Service message kept undelivered: its retry window closed",
            **log_fields(message),
            reason=kept.reason,
        )


@dataclass(frozen=True, slots=True)
class KeptMessage:
    """A document of ``undeliveredmessages``, as the operator commands show and resend it."""

    message: OutgoingMessage  # as the workflow first emitted it: same event id, times, bytes
    reason: str
    first_failure: datetime
    last_failure: datetime
    workflow_id: str
    veraid_ids: tuple[str, ...]

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> KeptMessage:
        message = OutgoingMessage(
            event_id=document["eventId"],
            sender_endpoint_id=document["senderEndpointId"],
            recipient_endpoint_id=document["recipientEndpointId"],
            content_type=document["contentType"],
            content_b64=base64.b64encode(document["content"]).decode("ascii"),
            creation_time=utc(document["creationTime"]),
            expiry_time=utc(document["expiryTime"]),
        )
        return cls(
            message=message,
            reason=document["reason"],
            first_failure=utc(document["firstFailure"]),
            last_failure=utc(document["lastFailure"]),
            workflow_id=document["workflowId"],
            veraid_ids=tuple(document.get("veraidIds", ())),
        )

    def as_json(self) -> dict[str, Any]:
        message = self.message
        return {
            "eventId": message.event_id,
            "senderEndpointId": message.sender_endpoint_id,
            "recipientEndpointId": message.recipient_endpoint_id,
            "contentType": message.content_type,
            "contentBase64": message.content_b64,
            "creationTime": message.creation_time.isoformat(),
            "expiryTime": message.expiry_time.isoformat(),
            "reason": self.reason,
            "firstFailure": self.first_failure.isoformat(),
            "lastFailure": self.last_failure.isoformat(),
            "workflowId": self.workflow_id,
            "veraidIds": list(self.veraid_ids),
        }


async def find_kept(
    collection: AsyncCollection[dict[str, Any]], query: Mapping[str, Any]
) -> list[KeptMessage]:
    """The kept messages ``query`` selects, oldest trouble first."""
    cursor = collection.find(query).sort([("firstFailure", ASCENDING), ("eventId", ASCENDING)])
    return [KeptMessage.from_document(document) async for document in cursor]


async def delete_kept(collection: AsyncCollection[dict[str, Any]], query: Mapping[str, Any]) -> int:
    result = await collection.delete_many(query)
    return result.deleted_count


async def note_failure(
    collection: AsyncCollection[dict[str, Any]], event_id: str, reason: str, when: datetime
) -> None:
    """Record a failed resend on the message's document."""
    await collection.update_one(
        {"eventId": event_id}, {"$set": {"reason": reason, "lastFailure": when}}
    )


# The queries of the operator commands.
EVERY_MESSAGE: Mapping[str, Any] = {}


def with_event_id(event_id: str) -> dict[str, Any]:
    return {"eventId": event_id}


def naming(veraid_ids: Iterable[str], workflow_ids: Iterable[str]) -> dict[str, Any]:
    """The messages about any of ``veraid_ids`` or from any of ``workflow_ids``."""
    return {
        "$or": [
            {"veraidIds": {"$in": list(veraid_ids)}},
            {"workflowId": {"$in": list(workflow_ids)}},
        ]
    }
