"""The ingress's record of taken parcels against a real mongod: answers, expiry, grouping.

The commands the ledger sends are counted by a pymongo command listener on the test's own
client, so the grouping is seen as mongod sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from infra.services import MongoDB, free_port
from ingress.parcel_ledger import COLLECTION_NAME, MAX_GROUP, ParcelLedger

pytestmark = pytest.mark.integration

WINDOW = timedelta(days=7)
SENDER = "0deadbeef"


class Counted(CommandListener):
    """Counts each command mongod was sent, by name."""

    def __init__(self) -> None:
        self.commands: Counter[str] = Counter()

    def started(self, event: CommandStartedEvent) -> None:
        self.commands[event.command_name] += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def counted(mongodb: MongoDB) -> AsyncIterator[tuple[ParcelLedger, Counted]]:
    listener = Counted()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongodb.uri, event_listeners=[listener]
    )
    collection = client[f"ledger-{uuid.uuid4().hex[:8]}"][COLLECTION_NAME]
    yield ParcelLedger(collection, WINDOW), listener
    await client.close()


def parcels(count: int) -> list[str]:
    return [f"parcel-{uuid.uuid4().hex}" for _ in range(count)]


async def test_a_recorded_parcel_is_taken_until_its_window_ends(
    counted: tuple[ParcelLedger, Counted],
) -> None:
    ledger, _ = counted
    now = datetime.now(UTC)
    taken, other = parcels(2)
    await ledger.record(SENDER, taken, now)

    assert await ledger.was_taken(SENDER, taken, now)
    assert await ledger.was_taken(SENDER, taken, now + WINDOW - timedelta(seconds=1))
    assert not await ledger.was_taken(SENDER, taken, now + WINDOW)
    assert not await ledger.was_taken(SENDER, other, now)
    # Parcel ids are the sender's: another sender's parcel of the same id is another parcel.
    assert not await ledger.was_taken("0another", taken, now)


async def test_concurrent_lookups_go_out_as_one_find_with_each_answer_its_own(
    counted: tuple[ParcelLedger, Counted],
) -> None:
    ledger, listener = counted
    now = datetime.now(UTC)
    recorded, unknown = parcels(20), parcels(20)
    expired = parcels(1)
    await ledger.record(SENDER, expired[0], now - WINDOW - timedelta(seconds=1))
    await asyncio.gather(*(ledger.record(SENDER, parcel, now) for parcel in recorded))
    listener.commands.clear()

    asked = [*recorded, *unknown, *expired, recorded[0]]  # one asked twice at once
    answers = await asyncio.gather(*(ledger.was_taken(SENDER, parcel, now) for parcel in asked))

    assert answers == [True] * 20 + [False] * 21 + [True]
    assert listener.commands["find"] == 1


async def test_concurrent_records_go_out_as_one_bulk_write(
    counted: tuple[ParcelLedger, Counted],
) -> None:
    ledger, listener = counted
    now = datetime.now(UTC)
    await ledger.record(SENDER, parcels(1)[0], now)  # creates the TTL index
    listener.commands.clear()
    many = parcels(40)

    await asyncio.gather(*(ledger.record(SENDER, parcel, now) for parcel in many))

    assert listener.commands["update"] == 1
    assert all(await asyncio.gather(*(ledger.was_taken(SENDER, p, now) for p in many)))


async def test_a_group_larger_than_one_operation_is_split(
    counted: tuple[ParcelLedger, Counted],
) -> None:
    ledger, listener = counted
    now = datetime.now(UTC)
    many = parcels(MAX_GROUP + 10)

    answers = await asyncio.gather(*(ledger.was_taken(SENDER, p, now) for p in many))

    assert answers == [False] * len(many)
    assert listener.commands["find"] == 2


async def test_a_failed_operation_fails_every_request_of_its_group() -> None:
    with cancelled_connects_unwarned():
        lookups, records, later = await groups_with_no_server()

    assert all(isinstance(outcome, PyMongoError) for outcome in [*lookups, *records, *later])


async def groups_with_no_server() -> tuple[list[object], list[object], list[object]]:
    # Nothing listens on this port: server selection fails after its timeout.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{free_port()}", serverSelectionTimeoutMS=300
    )
    ledger = ParcelLedger(client["ledger"][COLLECTION_NAME], WINDOW)
    try:
        async with asyncio.timeout(10):  # a ledger left waiting would hang here, not fail
            return await failed_groups(ledger, datetime.now(UTC))
    finally:
        await client.close()


@contextlib.contextmanager
def cancelled_connects_unwarned() -> Iterator[None]:
    """Reclaim, without its warning, a socket pymongo leaves open when a connect is cancelled.

    pymongo 4.20 closes a socket whose connect fails but not one whose connect is cancelled
    (``pool_shared._async_create_connection`` closes it on ``OSError`` only). Closing a client
    while its monitor retries a dead port can cancel such a connect, and the socket's
    ResourceWarning would then fail whichever test runs when it is collected. Only that
    warning is ignored, and only until the client is gone and collected.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"unclosed <socket\.socket", ResourceWarning)
        yield
        gc.collect()


async def failed_groups(
    ledger: ParcelLedger, now: datetime
) -> tuple[list[object], list[object], list[object]]:
    """Five look-ups at once, five records at once, then one more look-up."""
    lookups = await asyncio.gather(
        *(ledger.was_taken(SENDER, p, now) for p in parcels(5)), return_exceptions=True
    )
    records = await asyncio.gather(
        *(ledger.record(SENDER, p, now) for p in parcels(5)), return_exceptions=True
    )
    # The ledger is usable again afterwards: a later request starts a new group.
    later = await asyncio.gather(ledger.was_taken(SENDER, "late", now), return_exceptions=True)
    return list(lookups), list(records), list(later)


async def test_a_request_that_gives_up_leaves_the_rest_of_its_group_answered(
    counted: tuple[ParcelLedger, Counted],
) -> None:
    ledger, listener = counted
    now = datetime.now(UTC)
    recorded, unknown, abandoned = parcels(3)
    await ledger.record(SENDER, recorded, now)
    listener.commands.clear()
    asking = [
        asyncio.create_task(ledger.was_taken(SENDER, parcel, now))
        for parcel in (recorded, abandoned, unknown)
    ]
    await asyncio.sleep(0)  # all three have asked; the group has not gone out yet
    asking[1].cancel()

    async with asyncio.timeout(10):
        answers = await asyncio.gather(*asking, return_exceptions=True)

    assert answers[0] is True
    assert answers[2] is False
    assert isinstance(answers[1], asyncio.CancelledError)
    assert listener.commands["find"] == 1
