"""Legacy CSV contact pairing through the real stack: ingress over HTTP, Temporal, MongoDB, sink."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from awala.service_messages import INCOMING_SERVICE_MESSAGE_TYPE
from contract.pairing import PairingStatus
from infra.agents import Agent, new_agent
from letro.content_types import PAIRING_MATCH_TMP, PAIRING_REQUEST_TMP
from tests.conftest import Ingress, Sink, StartIngress, Worker
from tests.helpers import SERVER_ENDPOINT_ID, requests_collection, send_pairing_request
from workflows.legacy_pairing import LegacyContactPairing, workflow_id_for

pytestmark = pytest.mark.integration

MATCH_TIMEOUT = 20.0


async def wait_for_matches(sink: Sink, *agents: Agent) -> None:
    await sink.recorder.wait_for(
        lambda _: all(sink.recorder.to(agent.endpoint_id) for agent in agents), MATCH_TIMEOUT
    )


async def pair_status(client: Client, a: Agent, b: Agent) -> PairingStatus:
    handle = client.get_workflow_handle(workflow_id_for(a.veraid_id, b.veraid_id))
    status: PairingStatus = await handle.query("status", result_type=PairingStatus)
    return status


async def wait_for_status(
    client: Client,
    a: Agent,
    b: Agent,
    predicate: Callable[[PairingStatus], bool],
    deadline: float = 10,
) -> PairingStatus:
    async with asyncio.timeout(deadline):
        while True:
            status = await pair_status(client, a, b)
            if predicate(status):
                return status
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("alice_first", [True, False], ids=["alice-first", "bob-first"])
async def test_requests_match_in_either_order(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink, alice_first: bool
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob", "tickety.boo")
    first, second = (alice, bob) if alice_first else (bob, alice)

    assert (await send_pairing_request(http, ingress.url, first, second)).status_code == 204
    assert (await send_pairing_request(http, ingress.url, second, first)).status_code == 204
    await wait_for_matches(sink, alice, bob)

    [to_alice] = sink.recorder.to(alice.endpoint_id)
    [to_bob] = sink.recorder.to(bob.endpoint_id)
    assert to_alice.data == alice.expected_match_from(bob)
    assert to_bob.data == bob.expected_match_from(alice)
    for event in (to_alice, to_bob):
        assert event.event_type == "tech.relaycorp.awala.endpoint-internet.outgoing-service-message"
        assert event.content_type == PAIRING_MATCH_TMP
        assert event.source == SERVER_ENDPOINT_ID
        assert event.expiry is not None
    assert to_alice.event_id != to_bob.event_id


async def test_pending_request_is_stored_then_deleted_on_match(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    collection = requests_collection(mongo_client)

    await send_pairing_request(http, ingress.url, alice, bob)
    await wait_for_status(
        temporal_client, alice, bob, lambda s: s.pending_requesters == [alice.veraid_id]
    )
    document = await collection.find_one({"requesterVeraId": alice.veraid_id})
    assert document is not None
    assert document["targetVeraId"] == bob.veraid_id
    assert document["requesterEndpointId"] == alice.endpoint_id
    assert bytes(document["requesterIdKey"]) == alice.id_key
    assert isinstance(document["creationDate"], datetime)
    assert sink.recorder.to(alice.endpoint_id) == []

    await send_pairing_request(http, ingress.url, bob, alice)
    await wait_for_matches(sink, alice, bob)
    await wait_for_status(
        temporal_client, alice, bob, lambda s: s.matches == 1 and not s.pending_requesters
    )
    assert (
        await collection.count_documents(
            {"requesterVeraId": {"$in": [alice.veraid_id, bob.veraid_id]}}
        )
        == 0
    )


async def test_concurrent_requests_of_one_pair_match_exactly_once(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink
) -> None:
    pairs = [(new_agent("alice"), new_agent("bob")) for _ in range(10)]
    responses = await asyncio.gather(
        *(
            send_pairing_request(http, ingress.url, x, y)
            for alice, bob in pairs
            for x, y in ((alice, bob), (bob, alice))
        )
    )
    assert [response.status_code for response in responses] == [204] * 20
    everyone = [agent for pair in pairs for agent in pair]
    await wait_for_matches(sink, *everyone)
    await asyncio.sleep(1)  # room for a duplicate to show up, were there one
    for alice, bob in pairs:
        assert [e.data for e in sink.recorder.to(alice.endpoint_id)] == [
            alice.expected_match_from(bob)
        ]
        assert [e.data for e in sink.recorder.to(bob.endpoint_id)] == [
            bob.expected_match_from(alice)
        ]


async def test_redelivered_event_produces_no_duplicate_output(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink, temporal_client: Client
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    await send_pairing_request(http, ingress.url, alice, bob, parcel_id="alice-parcel")
    assert (
        await send_pairing_request(http, ingress.url, alice, bob, parcel_id="alice-parcel")
    ).status_code == 204
    await send_pairing_request(http, ingress.url, bob, alice, parcel_id="bob-parcel")
    await wait_for_matches(sink, alice, bob)

    # Late redeliveries of both requests, after the match: the ingress remembers the parcels
    # it handed over and drops the copies (as it dropped the one above) before Temporal.
    await send_pairing_request(http, ingress.url, alice, bob, parcel_id="alice-parcel")
    await send_pairing_request(http, ingress.url, bob, alice, parcel_id="bob-parcel")
    await asyncio.sleep(1)
    status = await wait_for_status(temporal_client, alice, bob, lambda s: s.matches == 1)
    assert status.redeliveries_ignored == 0  # none reached the workflow

    assert status.matches == 1
    assert status.pending_requesters == []
    # One match each. A redelivery that reaches the pair while its match is being sent makes
    # Temporal refuse that workflow task's continue-as-new, and the retried task sends the
    # match again under the same event id: one message to the endpoint, so count ids.
    assert len({e.event_id for e in sink.recorder.to(alice.endpoint_id)}) == 1
    assert len({e.event_id for e in sink.recorder.to(bob.endpoint_id)}) == 1


async def test_resend_replaces_endpoint_and_key_but_not_creation_date(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    alice_moved = Agent(alice.veraid_id, new_agent("x").endpoint_id, b"a new identity key")
    collection = requests_collection(mongo_client)

    await send_pairing_request(http, ingress.url, alice, bob)
    await wait_for_status(
        temporal_client, alice, bob, lambda s: s.pending_requesters == [alice.veraid_id]
    )
    original = await collection.find_one({"requesterVeraId": alice.veraid_id})
    assert original is not None
    await send_pairing_request(http, ingress.url, alice_moved, bob)
    async with asyncio.timeout(10):
        while True:
            updated = await collection.find_one({"requesterVeraId": alice.veraid_id})
            if updated and updated["requesterEndpointId"] == alice_moved.endpoint_id:
                break
            await asyncio.sleep(0.1)
    assert bytes(updated["requesterIdKey"]) == alice_moved.id_key
    assert updated["creationDate"] == original["creationDate"]

    await send_pairing_request(http, ingress.url, bob, alice)
    await wait_for_matches(sink, alice_moved, bob)
    assert [e.data for e in sink.recorder.to(bob.endpoint_id)] == [
        bob.expected_match_from(alice_moved)
    ]
    assert sink.recorder.to(alice.endpoint_id) == []


async def test_unmatched_request_expires_and_is_deleted(
    http: httpx.AsyncClient,
    start_ingress: StartIngress,
    http_worker: Worker,
    sink: Sink,
    temporal_client: Client,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    short_lived = start_ingress(
        TEMPORAL_TASK_QUEUE=http_worker.task_queue, PAIRING_REQUEST_TTL_SECONDS="2"
    )
    alice, bob = new_agent("alice"), new_agent("bob")
    collection = requests_collection(mongo_client)

    await send_pairing_request(http, short_lived.url, alice, bob)
    await wait_for_status(
        temporal_client, alice, bob, lambda s: s.pending_requesters == [alice.veraid_id]
    )
    assert await collection.count_documents({"requesterVeraId": alice.veraid_id}) == 1

    status = await wait_for_status(
        temporal_client, alice, bob, lambda s: s.expirations == 1, deadline=15
    )
    assert status.pending_requesters == []
    assert await collection.count_documents({"requesterVeraId": alice.veraid_id}) == 0
    assert sink.recorder.to(alice.endpoint_id) == []


MALFORMED_BODIES = {
    "two fields": b"alice@applepie.rocks,bob@tickety.boo",
    "bad base64": b"alice@applepie.rocks,bob@tickety.boo,not*base64",
    "not utf-8": b"alice@applepie.rocks,bob@tickety.boo,\xff\xfe",
    "requester not a user id": b"applepie.rocks,bob@tickety.boo,YWxpY2U=",
    "target not a user id": b"alice@applepie.rocks,@bob@tickety.boo,YWxpY2U=",
    "empty": b"",
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
async def test_malformed_request_is_dropped_without_output(
    http: httpx.AsyncClient, ingress: Ingress, temporal_client: Client, body: bytes
) -> None:
    sender = new_agent("mallory")
    response = await http.post(
        ingress.url,
        headers={
            "ce-specversion": "1.0",
            "ce-id": "malformed",
            "ce-type": "tech.relaycorp.awala.endpoint-internet.incoming-service-message",
            "ce-source": sender.endpoint_id,
            "ce-subject": SERVER_ENDPOINT_ID,
            "content-type": "application/vnd.relaycorp.letro.pairing-request-tmp",
        },
        content=body,
    )
    assert response.status_code == 204
    handle = temporal_client.get_workflow_handle(
        workflow_id_for("alice@applepie.rocks", "bob@tickety.boo")
    )
    with pytest.raises(RPCError) as error:
        await handle.describe()
    assert error.value.status == RPCStatusCode.NOT_FOUND


async def test_workflow_is_readable_in_temporal(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink, temporal_client: Client
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    await send_pairing_request(http, ingress.url, alice, bob)
    # Alice's request is handled (and stored) on its own before Bob's arrives: two
    # requests in one workflow task would match without ever being stored.
    await wait_for_status(
        temporal_client, alice, bob, lambda s: s.pending_requesters == [alice.veraid_id]
    )
    await send_pairing_request(http, ingress.url, bob, alice)
    await wait_for_matches(sink, alice, bob)
    await wait_for_status(temporal_client, alice, bob, lambda s: s.matches == 1)

    latest = temporal_client.get_workflow_handle(workflow_id_for(alice.veraid_id, bob.veraid_id))
    description = await latest.describe()
    assert description.workflow_type == "LegacyContactPairing"
    assert description.status == WorkflowExecutionStatus.RUNNING  # remembering the parcels
    # The run that matched continued as new; its history holds the steps.
    handle = temporal_client.get_workflow_handle(
        latest.id, run_id=description.raw_description.workflow_execution_info.first_run_id
    )
    # Local activities appear in the history as markers naming the activity type (patches
    # as markers without that data): one step stores the request, one concludes the match.
    history = await handle.fetch_history()
    markers = [
        event.marker_recorded_event_attributes
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
    ]
    steps = [
        json.loads(marker.details["data"].payloads[0].data)["activity_type"]
        for marker in markers
        if "data" in marker.details
    ]
    assert steps == ["store_pending_pairing_request", "deliver_pairing_match"]
    # The code replays its own history: the workflow is deterministic.
    await Replayer(workflows=[LegacyContactPairing]).replay_workflow(history)


async def test_structured_mode_events_pair_too(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink
) -> None:
    """Some brokers deliver structured mode (``application/cloudevents+json``)."""
    alice, bob = new_agent("alice"), new_agent("bob")
    for sender, contact in ((alice, bob), (bob, alice)):
        document = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "type": INCOMING_SERVICE_MESSAGE_TYPE,
            "source": sender.endpoint_id,
            "subject": SERVER_ENDPOINT_ID,
            "datacontenttype": PAIRING_REQUEST_TMP,
            "data_base64": base64.b64encode(sender.legacy_pairing_request(contact)).decode(),
        }
        response = await http.post(
            ingress.url,
            content=json.dumps(document),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert response.status_code == 204, response.text
    await sink.recorder.wait_for(
        lambda _: bool(sink.recorder.to(alice.endpoint_id) and sink.recorder.to(bob.endpoint_id)),
        MATCH_TIMEOUT,
    )
    [match] = sink.recorder.to(alice.endpoint_id)
    assert match.data == alice.expected_match_from(bob)
