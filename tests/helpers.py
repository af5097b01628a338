"""Posting agents' messages to the ingress as the Awala Internet Endpoint does (tests only).

Also where the test session's worker keeps pairing requests. The agents themselves
(``Agent``, ``VeraidAgent``...) live in ``infra.agents``, shared with the benchmarks.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypeVar

import httpx
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from awala.service_messages import INCOMING_SERVICE_MESSAGE_TYPE
from infra.agents import Agent
from letro.content_types import PAIRING_REQUEST_TMP

ResultT = TypeVar("ResultT")

SERVER_ENDPOINT_ID = "0letroserver" + "0" * 52


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


async def signal_count(handle: WorkflowHandle[Any, Any]) -> int:
    """How many signals a workflow run's history holds."""
    history = await handle.fetch_history()
    signalled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    return sum(event.event_type == signalled for event in history.events)


async def one_shot_outcome(
    client: Client, workflow_id: str, result_type: type[ResultT], deadline: float = 30
) -> ResultT:
    """What a one-shot workflow concluded, once it has: its result."""
    handle = client.get_workflow_handle(workflow_id, result_type=result_type)
    async with asyncio.timeout(deadline):
        while True:
            try:
                description = await handle.describe()
            except RPCError as error:  # not started yet
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
            else:
                if description.status == WorkflowExecutionStatus.COMPLETED:
                    result: ResultT = await handle.result()
                    return result
            await asyncio.sleep(0.1)
