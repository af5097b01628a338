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

Each request costs the ledger a lookup and a record, and each MongoDB operation costs the
ingress and mongod more CPU than the work it does (profiled under the pairing benchmark,
the two were a quarter of the ingress's CPU). So the ledger groups them, as a database
groups commits: the lookups asked for while one is under way go out together as one
``find``, the records as one unordered bulk write. An idle ingress sends each alone, at
once; a busy one sends fewer, larger operations, and no request waits for a timer.
A failed operation fails every request in its group (each answers 503, and is retried).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from contract.messages import dedup_key, parcel_digest

COLLECTION_NAME = "takenparcels"
# Bounds one operation's size (a find's $in list, a bulk write's updates); a group
# beyond it goes out in several operations, one after the other.
MAX_GROUP = 256

Result = TypeVar("Result")


@dataclass(frozen=True)
class _Asked:
    digest: str
    now: datetime


def _digest(sender_id: str, parcel_id: str) -> str:
    return parcel_digest(dedup_key(sender_id, parcel_id))


def _utc(stored: datetime) -> datetime:
    # pymongo returns naive UTC datetimes unless the client was made with tz_aware=True.
    return stored if stored.tzinfo is not None else stored.replace(tzinfo=UTC)


class _Grouped(Generic[Result]):
    """Runs ``operation`` on what was asked while the previous run was under way."""

    def __init__(
        self, operation: Callable[[Sequence[_Asked]], Awaitable[Sequence[Result]]]
    ) -> None:
        self._operation = operation
        self._waiting: list[tuple[_Asked, asyncio.Future[Result]]] = []
        self._running: asyncio.Task[None] | None = None

    async def ask(self, asked: _Asked) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((asked, future))
        if self._running is None:
            self._running = asyncio.create_task(self._run())
        # A request that gives up (its client went away) cancels only its own future.
        return await future

    async def _run(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
                try:
                    results = await self._operation([asked for asked, _ in group])
                # Whatever the driver raised belongs to every request of the group; each
                # handles it as it would its own (a PyMongoError answers 503).
                except Exception as error:  # noqa: BLE001
                    for _, future in group:
                        if not future.cancelled():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(group, results, strict=True):
                    if not future.cancelled():
                        future.set_result(result)
        finally:
            self._running = None


class ParcelLedger:
    def __init__(self, collection: AsyncCollection[dict[str, Any]], window: timedelta) -> None:
        self._collection = collection
        self._window = window
        self._indexed = False
        self._lookups = _Grouped(self._look_up)
        self._records = _Grouped(self._record)

    async def was_taken(self, sender_id: str, parcel_id: str, now: datetime) -> bool:
        return await self._lookups.ask(_Asked(_digest(sender_id, parcel_id), now))

    async def record(self, sender_id: str, parcel_id: str, now: datetime) -> None:
        await self._records.ask(_Asked(_digest(sender_id, parcel_id), now))

    async def _ensure_index(self) -> None:
        # On first use rather than at start-up, so the ingress starts while MongoDB is down.
        if not self._indexed:
            await self._collection.create_index("expireAt", expireAfterSeconds=0)
            self._indexed = True

    async def _look_up(self, group: Sequence[_Asked]) -> list[bool]:
        cursor = self._collection.find(
            {"_id": {"$in": list({asked.digest for asked in group})}},
            projection={"expireAt": True},
        )
        expiries = {found["_id"]: _utc(found["expireAt"]) async for found in cursor}
        # Each request compares the expiry with its own clock.
        return [
            (expiry := expiries.get(asked.digest)) is not None and expiry > asked.now
            for asked in group
        ]

    async def _record(self, group: Sequence[_Asked]) -> list[None]:
        await self._ensure_index()
        await self._collection.bulk_write(
            [
                UpdateOne(
                    {"_id": asked.digest},
                    {"$set": {"expireAt": asked.now + self._window}},
                    upsert=True,
                )
                for asked in group
            ],
            ordered=False,
        )
        return [None] * len(group)
