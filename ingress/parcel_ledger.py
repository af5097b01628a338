"""The parcels the ingress handed to Temporal, remembered for the dedup window.

A broker may redeliver a message days after it was taken (Pub/Sub keeps one up to 7 days).
A running workflow ignores a parcel it already took, but a pair workflow lingers only a while
after its last request: keeping it open for the whole window would keep the pair's keys and
bundles in Temporal for as long, and a run per pair to drop them would double what Temporal
spends on a pair. So the ingress remembers every parcel it handed over, by a digest, in
MongoDB, and drops a parcel it finds there before checking or routing it.

Only parcels that were verified and taken count: a parcel is recorded after Temporal accepted
it (or said it already had), never before, so an ignored, refused or failed message can be
delivered again. Two copies racing through the ingress at once both reach Temporal, where the
running workflow tells them apart. MongoDB's TTL monitor deletes a digest once its window has
passed; until then a lookup also compares the expiry, as the monitor runs once a minute.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from contract.messages import dedup_key, parcel_digest

COLLECTION_NAME = "takenparcels"


def _digest(sender_id: str, parcel_id: str) -> str:
    return parcel_digest(dedup_key(sender_id, parcel_id))


class ParcelLedger:
    def __init__(self, collection: AsyncCollection[dict[str, Any]], window: timedelta) -> None:
        self._collection = collection
        self._window = window
        self._indexed = False

    async def _ensure_index(self) -> None:
        # On first use rather than at start-up, so the ingress starts while MongoDB is down.
        if not self._indexed:
            await self._collection.create_index("expireAt", expireAfterSeconds=0)
            self._indexed = True

    async def was_taken(self, sender_id: str, parcel_id: str, now: datetime) -> bool:
        found = await self._collection.find_one(
            {"_id": _digest(sender_id, parcel_id), "expireAt": {"$gt": now}},
            projection={"_id": True},
        )
        return found is not None

    async def record(self, sender_id: str, parcel_id: str, now: datetime) -> None:
        await self._ensure_index()
        await self._collection.update_one(
            {"_id": _digest(sender_id, parcel_id)},
            {"$set": {"expireAt": now + self._window}},
            upsert=True,
        )
