"""Deduplication for the whole window, and MongoDB read back, through the real stack.

An ingress with a short ``DEDUP_WINDOW_SECONDS`` (the old pair linger was an hour, and one-shot
workflows relied on the namespace's retention), the session's worker, Temporal, mongod and
the recording sink; original-server documents are written into mongod directly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from contract.accounts import AccountCreationStatus
from contract.connection_params import ConnectionParamsOutcome
from contract.pairing import PairingStatus
from infra.agents import (
    VeraidAgent,
    VeraidOrg,
    connection_params,
    endpoint_id,
    new_agent,
    new_rsa_key,
    new_veraid_agent,
    spki,
)
from infra.connparams_servers import Scenario
from infra.dev_authority import DevAuthorityServer
from letro.account_messages import parse_account_creation
from letro.content_types import (
    ACCOUNT_CREATION,
    ACCOUNT_REQUEST,
    CONNECTION_PARAMS,
    CONTACT_PAIRING_REQUEST,
    PAIRING_AUTH,
)
from letro.veraid_ids import pairing_key
from tests.account_helpers import pss_request
from tests.conftest import (
    TEST_RETRY_SECONDS,
    ConnectionParamsServers,
    Deployment,
    Ingress,
    Sink,
    StartAccountWorker,
    StartIngress,
    Worker,
)
from tests.helpers import (
    binary_event_headers,
    one_shot_outcome,
    requests_collection,
    send_pairing_request,
)
from tests.test_connection_params_e2e import Request, at, new_request, send, serve, unique_domain
from workflows import account_creation, forwarding, legacy_pairing, veraid_pairing

pytestmark = pytest.mark.integration

WINDOW_SECONDS = 8
LINGER_SECONDS = 2
TTL_SECONDS = 6
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def short_window(start_ingress: StartIngress, http_worker: Worker) -> Ingress:
    return start_ingress(
        TEMPORAL_TASK_QUEUE=http_worker.task_queue,
        DEDUP_WINDOW_SECONDS=str(WINDOW_SECONDS),
        PAIRING_LINGER_SECONDS=str(LINGER_SECONDS),
        PAIRING_REQUEST_TTL_SECONDS=str(TTL_SECONDS),
    )


async def post(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sender: str,
    content_type: str,
    body: bytes,
    parcel: str,
) -> None:
    headers = binary_event_headers(sender_id=sender, content_type=content_type, parcel_id=parcel)
    response = await http.post(ingress.url, headers=headers, content=body)
    assert response.status_code == 204, response.text


async def status_of(client: Client, workflow_id: str) -> PairingStatus:
    status: PairingStatus = await client.get_workflow_handle(workflow_id).query(
        "status", result_type=PairingStatus
    )
    return status


async def until_status(client: Client, workflow_id: str, check: Any) -> PairingStatus:
    async with asyncio.timeout(TIMEOUT):
        while True:
            try:
                status = await status_of(client, workflow_id)
                if check(status):
                    return status
            except RPCError:  # not started yet
                pass
            await asyncio.sleep(0.1)


async def until_closed(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionStatus | None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            status = (await handle.describe()).status
            if status != WorkflowExecutionStatus.RUNNING:
                return status
            await asyncio.sleep(0.2)


async def run_count(client: Client, workflow_id: str) -> int:
    return len([run async for run in client.list_workflows(f"WorkflowId = '{workflow_id}'")])


async def history_blobs(handle: WorkflowHandle[Any, Any]) -> list[bytes]:
    """The current run's history, and every payload in it decoded."""
    text = (await handle.fetch_history()).to_json()
    return [text.encode(), *_payloads(json.loads(text))]


def _payloads(node: object) -> Iterator[bytes]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "data" and isinstance(value, str):
                yield base64.b64decode(value)
            else:
                yield from _payloads(value)
    elif isinstance(node, list):
        for item in node:
            yield from _payloads(item)


def absent(blobs: list[bytes], *secrets: bytes | str) -> bool:
    for secret in secrets:
        raw = secret.encode() if isinstance(secret, str) else secret
        for form in (raw, base64.b64encode(raw)):
            if any(form in blob for blob in blobs):
                return False
    return True


# --- Pairs -------------------------------------------------------------------------------------


async def test_legacy_redelivery_is_ignored_for_the_window_then_is_a_new_request(
    http: httpx.AsyncClient, short_window: Ingress, sink: Sink, temporal_client: Client
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    workflow_id = legacy_pairing.workflow_id_for(alice.veraid_id, bob.veraid_id)
    handle = temporal_client.get_workflow_handle(workflow_id)
    await send_pairing_request(http, short_window.url, alice, bob, parcel_id="pa")
    await send_pairing_request(http, short_window.url, bob, alice, parcel_id="pb")
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(bob.endpoint_id)), TIMEOUT)
    taken_at = time.monotonic()

    # A copy while the pair lingers is dropped by the ingress too: the pair never sees it
    # (the pair's own memory is for copies racing the ingress's record of the parcel).
    await send_pairing_request(http, short_window.url, alice, bob, parcel_id="pa")
    status = await until_status(temporal_client, workflow_id, lambda s: s.matches == 1)
    assert (status.redeliveries_ignored, status.pending_requesters) == (0, [])

    # Once it has closed (the old linger), the ingress drops copies: no new run, no request.
    assert await until_closed(handle) == WorkflowExecutionStatus.COMPLETED
    assert time.monotonic() - taken_at < WINDOW_SECONDS - 1  # still inside the window
    for sender, target, parcel in ((alice, bob, "pa"), (bob, alice, "pb")):
        await send_pairing_request(http, short_window.url, sender, target, parcel_id=parcel)
    await asyncio.sleep(1)
    assert await run_count(temporal_client, workflow_id) == 1
    assert len(sink.recorder.to(alice.endpoint_id)) == len(sink.recorder.to(bob.endpoint_id)) == 1
    assert short_window.process.log_file is not None
    log = short_window.process.log_file.read_text()
    assert log.count("Ignored redelivered service message") >= 3

    # Once the window has closed, the same parcel is a new request.
    await asyncio.sleep(max(0.0, WINDOW_SECONDS - (time.monotonic() - taken_at)) + 0.5)
    await send_pairing_request(http, short_window.url, alice, bob, parcel_id="pa")
    status = await until_status(
        temporal_client, workflow_id, lambda s: s.pending_requesters == [alice.veraid_id]
    )
    assert status.matches == 0
    assert await run_count(temporal_client, workflow_id) == 2  # matched, then the new request


async def test_veraid_match_leaves_no_running_workflow_and_copies_are_dropped(
    http: httpx.AsyncClient,
    short_window: Ingress,
    sink: Sink,
    temporal_client: Client,
    veraid_org: VeraidOrg,
) -> None:
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    alice_bundle, bob_bundle = (
        alice.pairing_request(bob.veraid_id),
        bob.pairing_request(alice.veraid_id),
    )
    workflow_id = veraid_pairing.workflow_id_for(
        pairing_key(alice.veraid_id), pairing_key(bob.veraid_id)
    )
    await post(http, short_window, alice.endpoint_id, CONTACT_PAIRING_REQUEST, alice_bundle, "va")
    await post(http, short_window, bob.endpoint_id, CONTACT_PAIRING_REQUEST, bob_bundle, "vb")
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(alice.endpoint_id)), TIMEOUT)

    # The bundles and keys leave with the run, which closes after the linger, not the window.
    handle = temporal_client.get_workflow_handle(workflow_id)
    assert await until_closed(handle) == WorkflowExecutionStatus.COMPLETED
    for agent, bundle, parcel in ((alice, alice_bundle, "va"), (bob, bob_bundle, "vb")):
        await post(http, short_window, agent.endpoint_id, CONTACT_PAIRING_REQUEST, bundle, parcel)
    await asyncio.sleep(1)
    assert await run_count(temporal_client, workflow_id) == 1
    assert len(sink.recorder.to(alice.endpoint_id)) == len(sink.recorder.to(bob.endpoint_id)) == 1


async def test_only_a_taken_parcel_counts(
    http: httpx.AsyncClient,
    short_window: Ingress,
    temporal_client: Client,
    veraid_org: VeraidOrg,
) -> None:
    """A parcel the ingress dropped (here unverifiable) is not remembered: the same parcel id
    with a genuine request is taken."""
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    workflow_id = veraid_pairing.workflow_id_for(
        pairing_key(alice.veraid_id), pairing_key(bob.veraid_id)
    )
    junk = b"\x30\x03\x02\x01\x00"
    await post(http, short_window, alice.endpoint_id, CONTACT_PAIRING_REQUEST, junk, "same")
    genuine = alice.pairing_request(bob.veraid_id)
    await post(http, short_window, alice.endpoint_id, CONTACT_PAIRING_REQUEST, genuine, "same")

    status = await until_status(
        temporal_client,
        workflow_id,
        lambda s: s.pending_requesters == [pairing_key(alice.veraid_id)],
    )
    assert status.redeliveries_ignored == 0


# --- MongoDB read back ---------------------------------------------------------------------------


def original_document(
    requester: str, target: str, endpoint: str, key: bytes, created: datetime, bundle: bytes | None
) -> dict[str, Any]:
    """A request as the original TypeScript server stored it: no kind, its own creation date."""
    document: dict[str, Any] = {
        "requesterVeraId": requester,
        "targetVeraId": target,
        "requesterEndpointId": endpoint,
        "requesterIdKey": key,
        "creationDate": created,
        "__v": 0,
    }
    if bundle is not None:
        document["signatureBundle"] = bundle
    return document


async def test_original_legacy_document_matches_after_cut_over(
    http: httpx.AsyncClient,
    short_window: Ingress,
    sink: Sink,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    collection = requests_collection(mongo_client)
    created = datetime.now(UTC) - timedelta(seconds=1)
    await collection.insert_one(
        original_document(
            alice.veraid_id, bob.veraid_id, alice.endpoint_id, alice.id_key, created, None
        )
    )

    await send_pairing_request(http, short_window.url, bob, alice)
    await sink.recorder.wait_for(
        lambda _: bool(sink.recorder.to(alice.endpoint_id) and sink.recorder.to(bob.endpoint_id)),
        TIMEOUT,
    )

    [to_alice], [to_bob] = sink.recorder.to(alice.endpoint_id), sink.recorder.to(bob.endpoint_id)
    assert to_alice.data == alice.expected_match_from(bob)
    assert to_bob.data == bob.expected_match_from(alice)
    assert (
        await collection.count_documents(
            {"requesterVeraId": {"$in": [alice.veraid_id, bob.veraid_id]}}
        )
        == 0
    )


async def test_original_veraid_document_matches_after_cut_over(
    http: httpx.AsyncClient,
    short_window: Ingress,
    sink: Sink,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    veraid_org: VeraidOrg,
) -> None:
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    alice_bundle, bob_bundle = (
        alice.pairing_request(bob.veraid_id),
        bob.pairing_request(alice.veraid_id),
    )
    collection = requests_collection(mongo_client)
    await collection.insert_one(
        original_document(
            pairing_key(alice.veraid_id),
            pairing_key(bob.veraid_id),
            alice.endpoint_id,
            spki(alice.endpoint_key),
            datetime.now(UTC) - timedelta(seconds=1),
            alice_bundle,
        )
    )

    await post(http, short_window, bob.endpoint_id, CONTACT_PAIRING_REQUEST, bob_bundle, "vb")
    await sink.recorder.wait_for(
        lambda _: bool(sink.recorder.to(alice.endpoint_id) and sink.recorder.to(bob.endpoint_id)),
        TIMEOUT,
    )

    # Each side gets the other's SignatureBundle, the stored one included.
    [to_alice], [to_bob] = sink.recorder.to(alice.endpoint_id), sink.recorder.to(bob.endpoint_id)
    assert (to_alice.content_type, to_alice.data) == (CONTACT_PAIRING_REQUEST, bob_bundle)
    assert (to_bob.content_type, to_bob.data) == (CONTACT_PAIRING_REQUEST, alice_bundle)
    assert await collection.count_documents({"requesterEndpointId": alice.endpoint_id}) == 0


async def test_stored_request_expires_from_its_own_creation_date(
    http: httpx.AsyncClient,
    short_window: Ingress,
    sink: Sink,
    temporal_client: Client,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    workflow_id = legacy_pairing.workflow_id_for(alice.veraid_id, bob.veraid_id)
    collection = requests_collection(mongo_client)
    created = datetime.now(UTC) - timedelta(seconds=TTL_SECONDS - 2)
    await collection.insert_one(
        original_document(
            alice.veraid_id, bob.veraid_id, alice.endpoint_id, alice.id_key, created, None
        )
    )

    # Alice resends after the cut-over: her request keeps its original creation date.
    sent = time.monotonic()
    await send_pairing_request(http, short_window.url, alice, bob)
    await until_status(temporal_client, workflow_id, lambda s: s.expirations == 1)

    assert time.monotonic() - sent < TTL_SECONDS - 1  # not a whole TTL from the resend
    assert await collection.count_documents({"requesterEndpointId": alice.endpoint_id}) == 0
    assert sink.recorder.to(alice.endpoint_id) == []


async def test_request_of_a_terminated_pair_matches_after_restart(
    http: httpx.AsyncClient, short_window: Ingress, sink: Sink, temporal_client: Client
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    workflow_id = legacy_pairing.workflow_id_for(alice.veraid_id, bob.veraid_id)
    await send_pairing_request(http, short_window.url, alice, bob)
    await until_status(temporal_client, workflow_id, lambda s: s.pending_requesters)
    await temporal_client.get_workflow_handle(workflow_id).terminate(reason="test")

    await send_pairing_request(http, short_window.url, bob, alice)
    await sink.recorder.wait_for(
        lambda _: bool(sink.recorder.to(alice.endpoint_id) and sink.recorder.to(bob.endpoint_id)),
        TIMEOUT,
    )

    [to_alice], [to_bob] = sink.recorder.to(alice.endpoint_id), sink.recorder.to(bob.endpoint_id)
    assert to_alice.data == alice.expected_match_from(bob)
    assert to_bob.data == bob.expected_match_from(alice)


# --- One-shot workflows --------------------------------------------------------------------------


def ingress_ignored(ingress: Ingress, parcel_id: str) -> list[str]:
    """How the ingress ignored each copy of ``parcel_id``, in order: ``"record"`` when its
    record of taken parcels dropped it before routing, ``"temporal"`` when Temporal said it
    already had the workflow (that line names the workflow)."""
    log_file = ingress.process.log_file
    assert log_file is not None
    return [
        "temporal" if '"workflowId"' in line else "record"
        for line in log_file.read_text().splitlines()
        if "Ignored redelivered service message" in line and parcel_id in line
    ]


async def test_forwarded_authorisation_has_no_second_effect_in_the_window_or_after(
    http: httpx.AsyncClient, short_window: Ingress, sink: Sink, temporal_client: Client
) -> None:
    granter, grantee = new_rsa_key(), new_rsa_key()
    params = connection_params(granter, grantee)
    parcel_id = f"auth-{uuid.uuid4().hex[:8]}"
    workflow_id = forwarding.workflow_id_for(endpoint_id(granter), parcel_id)
    await post(http, short_window, endpoint_id(granter), PAIRING_AUTH, params, parcel_id)
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(endpoint_id(grantee))), TIMEOUT)
    taken_at = time.monotonic()
    handle = temporal_client.get_workflow_handle(workflow_id)
    # Done once forwarded: no second run waits out the window.
    assert await until_closed(handle) == WorkflowExecutionStatus.COMPLETED

    # In the window the ingress's record drops the copy before routing it.
    await post(http, short_window, endpoint_id(granter), PAIRING_AUTH, params, parcel_id)
    assert ingress_ignored(short_window, parcel_id) == ["record"]
    # After it, Temporal refuses the closed workflow's id (reject duplicate).
    await asyncio.sleep(max(0.0, WINDOW_SECONDS - (time.monotonic() - taken_at)))
    await post(http, short_window, endpoint_id(granter), PAIRING_AUTH, params, parcel_id)
    assert ingress_ignored(short_window, parcel_id) == ["record", "temporal"]
    await asyncio.sleep(1)  # room for a second forward, were there one
    assert len(sink.recorder.to(endpoint_id(grantee))) == 1
    assert await run_count(temporal_client, workflow_id) == 1


async def test_refusal_is_sent_once_for_the_window(
    http: httpx.AsyncClient,
    short_window: Ingress,
    sink: Sink,
    temporal_client: Client,
    veraid_org: VeraidOrg,
) -> None:
    alice = VeraidAgent(veraid_org, "self-pairer", new_rsa_key())
    request = alice.pairing_request(alice.veraid_id)  # verified, then refused
    parcel_id = f"self-{uuid.uuid4().hex[:8]}"
    workflow_id = veraid_pairing.refusal_workflow_id(alice.endpoint_id, parcel_id)
    await post(http, short_window, alice.endpoint_id, CONTACT_PAIRING_REQUEST, request, parcel_id)
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(alice.endpoint_id)), TIMEOUT)
    handle = temporal_client.get_workflow_handle(workflow_id)
    assert await until_closed(handle) == WorkflowExecutionStatus.COMPLETED
    assert (await handle.result()) == {"reason": "INVALID_TARGET_VERAID"}

    await post(http, short_window, alice.endpoint_id, CONTACT_PAIRING_REQUEST, request, parcel_id)
    await asyncio.sleep(1)
    assert ingress_ignored(short_window, parcel_id) == ["record"]
    assert len(sink.recorder.to(alice.endpoint_id)) == 1
    assert await run_count(temporal_client, workflow_id) == 1


# --- Connection params ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_window_params(start_ingress: StartIngress, dns_deployment: Deployment) -> Deployment:
    """The session's plain-DNS connection-params worker, behind an ingress with a short window."""
    ingress = start_ingress(
        TEMPORAL_TASK_QUEUE=dns_deployment.worker.task_queue,
        CONNECTION_PARAMS_RETRY_SECONDS=str(TEST_RETRY_SECONDS),
        DEDUP_WINDOW_SECONDS=str(WINDOW_SECONDS),
    )
    return Deployment(ingress, dns_deployment.worker)


def without_id(blobs: list[bytes], workflow_id: str) -> list[bytes]:
    return [blob.replace(workflow_id.encode(), b"") for blob in blobs]


def ignored_redeliveries(deployment: Deployment, request: Request) -> list[str]:
    return ingress_ignored(deployment.ingress, request.parcel_id)


async def test_served_params_request_is_answered_once_for_the_window_and_after(
    http: httpx.AsyncClient,
    short_window_params: Deployment,
    connection_params_servers: ConnectionParamsServers,
    sink: Sink,
    temporal_client: Client,
) -> None:
    servers = connection_params_servers
    domain = unique_domain()
    serve(servers, domain, at(servers, Scenario.GOOD))
    request = new_request(domain)
    srv_name = f"_awala-pdc._tcp.{domain}."
    fetches_before = servers.https.requests[Scenario.GOOD]

    await send(http, short_window_params, request)
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(request.sender_id)), TIMEOUT)
    taken_at = time.monotonic()
    [reply] = sink.recorder.to(request.sender_id)
    assert (reply.content_type, reply.data) == (CONNECTION_PARAMS, servers.params.der)

    handle = temporal_client.get_workflow_handle(request.workflow_id)
    outcome = await one_shot_outcome(temporal_client, request.workflow_id, ConnectionParamsOutcome)
    assert outcome.content_type == CONNECTION_PARAMS
    assert await until_closed(handle) == WorkflowExecutionStatus.COMPLETED

    # Redelivered inside the window: the ingress's record drops it before routing.
    await send(http, short_window_params, request)
    await asyncio.sleep(1.5)  # room for a second reply, were there one
    assert len(sink.recorder.to(request.sender_id)) == 1
    assert servers.dns.queries_for(srv_name) == 1
    assert servers.https.requests[Scenario.GOOD] - fetches_before == 1
    assert ignored_redeliveries(short_window_params, request) == ["record"]

    # Once the window has closed, Temporal refuses the id (reject duplicate) until the
    # namespace's retention drops the closed run: still no second effect.
    await asyncio.sleep(max(0.0, WINDOW_SECONDS - (time.monotonic() - taken_at)))
    await send(http, short_window_params, request)
    await asyncio.sleep(1.5)
    assert len(sink.recorder.to(request.sender_id)) == 1
    assert servers.dns.queries_for(srv_name) == 1
    assert servers.https.requests[Scenario.GOOD] - fetches_before == 1
    assert ignored_redeliveries(short_window_params, request) == ["record", "temporal"]
    assert await run_count(temporal_client, request.workflow_id) == 1


# --- Accounts ------------------------------------------------------------------------------------

ACCOUNT_WINDOW_SECONDS = 8


@pytest.fixture(scope="module")
def short_window_accounts(
    start_account_worker: StartAccountWorker, start_ingress: StartIngress
) -> Ingress:
    """Accounts read the window in the worker, which answers the copies (the ingress only
    signals them), so the short window is the worker's setting."""
    worker = start_account_worker(
        "letro-accounts-dedup", DEDUP_WINDOW_SECONDS=str(ACCOUNT_WINDOW_SECONDS)
    )
    return start_ingress(TEMPORAL_TASK_QUEUE=worker.task_queue)


async def authority_members(
    http: httpx.AsyncClient, authority: DevAuthorityServer, prefix: str
) -> list[tuple[str, int]]:
    """Name and key count of each member named ``prefix``..., as the development Authority
    lists them (``GET /_dev/members``)."""
    response = await http.get(f"{authority.url}/_dev/members")
    assert response.status_code == 200
    members: list[dict[str, Any]] = response.json()["members"]
    return [(m["name"], m["publicKeys"]) for m in members if (m["name"] or "").startswith(prefix)]


async def test_redelivered_account_request_creates_no_second_member(
    http: httpx.AsyncClient,
    short_window_accounts: Ingress,
    sink: Sink,
    dev_authority: DevAuthorityServer,
    temporal_client: Client,
) -> None:
    """A redelivered parcel is dropped by the ingress. A copy of the request under another
    parcel id (the agent sending it again: same sender, same bytes, so the same workflow) is
    signalled to the workflow, which, once it has replied, answers each copy with that same
    reply (the same event id, the member's bundle fetched again) until the window closes. It
    never creates a member for a copy."""
    sender, prefix = "0" + uuid.uuid4().hex * 2, "d" + uuid.uuid4().hex[:9]
    content, _ = pss_request(prefix)
    workflow_id = account_creation.workflow_id_for(sender, content)
    await post(http, short_window_accounts, sender, ACCOUNT_REQUEST, content, "acc")
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(sender)), TIMEOUT)
    [first] = sink.recorder.to(sender)
    assert first.content_type == ACCOUNT_CREATION
    _, _, assigned, _ = parse_account_creation(first.data)
    assert await authority_members(http, dev_authority, prefix) == [(prefix, 1)]

    # The same parcel again, inside the window: dropped.
    handle = temporal_client.get_workflow_handle(workflow_id)
    await post(http, short_window_accounts, sender, ACCOUNT_REQUEST, content, "acc")
    await asyncio.sleep(1)
    assert len(sink.recorder.to(sender)) == 1
    # The same request in a new parcel: answered again, with the same reply.
    await post(http, short_window_accounts, sender, ACCOUNT_REQUEST, content, "acc-again")
    await sink.recorder.wait_for(lambda _: len(sink.recorder.to(sender)) >= 2, TIMEOUT)
    await asyncio.sleep(1)  # room for a third reply, were there one
    replies = sink.recorder.to(sender)
    assert len(replies) == 2
    assert {r.event_id for r in replies} == {first.event_id}  # the endpoint keeps one
    assert {parse_account_creation(r.data)[2] for r in replies} == {assigned}
    assert await authority_members(http, dev_authority, prefix) == [(prefix, 1)]
    assert dev_authority.authority.requests.count(("create_member", prefix)) == 1
    # The run answering copies (it continued as new after replying) took this one copy.
    status = await handle.query("status", result_type=AccountCreationStatus)
    assert status == AccountCreationStatus(assigned, 1, 2)
    assert await until_closed(handle) == WorkflowExecutionStatus.COMPLETED
