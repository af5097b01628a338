"""Attacks on the ingress, through the real stack: each must cost the attacker, not the service.

Nothing unverified reaches Temporal, each content type has a size cap, every id that ends up
in a workflow id is bounded, and a pair that is resent to without end continues as new.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from contract.pairing import PairingStatus
from infra.agents import VeraidAgent, VeraidOrg, make_org, new_agent, new_veraid_agent, spki
from letro.contact_pairing import (
    LETRO_SERVICE_OID,
    ContactPairingFailureReason,
    parse_contact_pairing_failure,
    serialise_contact_pairing_request,
)
from letro.content_types import (
    CONTACT_PAIRING_FAILURE,
    CONTACT_PAIRING_REQUEST,
    MAX_CONTENT_LENGTHS,
    PAIRING_REQUEST_TMP,
)
from letro.veraid_ids import pairing_key
from tests.conftest import Ingress, Sink, StartIngress, Worker
from tests.helpers import binary_event_headers, signal_count
from tests.test_pairing_fuzz import mutate
from veraid_helpers import bloated_signature_bundle
from workflows.legacy_pairing import workflow_id_for as legacy_workflow_id
from workflows.veraid_pairing import refusal_workflow_id, workflow_id_for

pytestmark = pytest.mark.integration

TIMEOUT = 30.0
JUNK_REQUESTS = 300


async def post(
    http: httpx.AsyncClient,
    url: str,
    sender_id: str,
    content: bytes,
    content_type: str = CONTACT_PAIRING_REQUEST,
    parcel_id: str | None = None,
) -> httpx.Response:
    headers = binary_event_headers(
        sender_id=sender_id, content_type=content_type, parcel_id=parcel_id
    )
    return await http.post(url, headers=headers, content=content)


def pair_handle(client: Client, a: str, b: str) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(workflow_id_for(pairing_key(a), pairing_key(b)))


async def exists(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_junk_naming_a_pair_adds_nothing_to_its_history(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    veraid_org: VeraidOrg,
) -> None:
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    # Mallory holds a DNSSEC root nobody trusts and signs as Bob with it; she also sends
    # Alice's own bundle with bytes flipped. Every one of them names the pair.
    forger = VeraidAgent(make_org(veraid_org.domain), bob.user_name, bob.endpoint_key)
    rng = random.Random(42)
    genuine = alice.pairing_request(bob.veraid_id)
    # (A flipped byte the signatures do not cover leaves a valid bundle of Alice's, which
    # from Mallory's endpoint earns Mallory a refusal: it is sent from there.)
    mallory = new_veraid_agent(veraid_org, "mallory")
    junk = [(bob, forger.pairing_request(alice.veraid_id)) for _ in range(JUNK_REQUESTS // 2)]
    junk += [(mallory, mutate(genuine, rng, 1)) for _ in range(JUNK_REQUESTS - len(junk))]
    limit = asyncio.Semaphore(16)

    async def send_junk(sender: VeraidAgent, body: bytes) -> int:
        async with limit:
            return (await post(http, ingress.url, sender.endpoint_id, body)).status_code

    statuses = await asyncio.gather(*(send_junk(sender, body) for sender, body in junk))

    assert set(statuses) == {204}  # acknowledged (never retried), and dropped
    pair = pair_handle(temporal_client, alice.veraid_id, bob.veraid_id)
    assert not await exists(pair)  # not even started

    bob_bundle = bob.pairing_request(alice.veraid_id)
    assert (await post(http, ingress.url, alice.endpoint_id, genuine)).status_code == 204
    assert (await post(http, ingress.url, bob.endpoint_id, bob_bundle)).status_code == 204
    await sink.recorder.wait_for(
        lambda _: bool(sink.recorder.to(alice.endpoint_id) and sink.recorder.to(bob.endpoint_id)),
        TIMEOUT,
    )
    assert [event.data for event in sink.recorder.to(alice.endpoint_id)] == [bob_bundle]
    assert [event.data for event in sink.recorder.to(bob.endpoint_id)] == [genuine]
    assert await signal_count(pair) == 2  # the two genuine requests and nothing else


# Generous for a loaded CI machine: the answer took ~7 ms here, HTTP included. Validating
# the chain regardless of the limits took ~0.1 s (~0.5 s of CPU before veraid._dnssec).
BLOATED_CHAIN_SECONDS = 2.0


def refusals_of(ingress: Ingress, parcel_id: str) -> list[dict[str, Any]]:
    assert ingress.process.log_file is not None
    lines = [json.loads(line) for line in ingress.process.log_file.read_text().splitlines()]
    return [
        line
        for line in lines
        if line.get("parcelId") == parcel_id
        and line.get("event") == "Refused unverifiable contact pairing request"
    ]


async def test_a_bloated_dnssec_chain_is_refused_quickly_and_reaches_nothing(
    http: httpx.AsyncClient, ingress: Ingress, temporal_client: Client, veraid_org: VeraidOrg
) -> None:
    mallory, bob = new_veraid_agent(veraid_org, "mallory"), new_veraid_agent(veraid_org, "bob")
    plaintext = serialise_contact_pairing_request(spki(mallory.endpoint_key), bob.veraid_id)

    def request(junk_keys: int, junk_rrsigs: int) -> bytes:
        # Signed by the session's trusted organisation as Mallory, sent from her endpoint:
        # without the junk in its root DNSKEY response, it verifies and pairs (Mallory, Bob).
        return bloated_signature_bundle(
            veraid_org,
            plaintext=plaintext,
            service_oid=LETRO_SERVICE_OID,
            user_name=mallory.user_name,
            junk_keys=junk_keys,
            junk_rrsigs=junk_rrsigs,
        )

    bloated = request(junk_keys=1100, junk_rrsigs=200)
    assert len(bloated) <= MAX_CONTENT_LENGTHS[CONTACT_PAIRING_REQUEST]  # read, not a 413
    parcel_id = str(uuid.uuid4())

    started = time.monotonic()
    response = await post(http, ingress.url, mallory.endpoint_id, bloated, parcel_id=parcel_id)
    elapsed = time.monotonic() - started

    assert response.status_code == 204  # acknowledged (never retried), and dropped
    assert elapsed < BLOATED_CHAIN_SECONDS
    [refusal] = refusals_of(ingress, parcel_id)
    # Refused by a limit, read from the sizes before any record is parsed; without the limits
    # the chain is parsed and validated, and fails as DnssecError.
    assert "ChainLimitError" in refusal["reason"]
    assert "at most 8192" in refusal["reason"]  # MAX_RESPONSE_BYTES
    pair = pair_handle(temporal_client, mallory.veraid_id, bob.veraid_id)
    assert not await exists(pair)
    refusal_workflow = refusal_workflow_id(mallory.endpoint_id, parcel_id)
    assert not await exists(temporal_client.get_workflow_handle(refusal_workflow))

    # The same request without the junk starts the pair: nothing else is wrong with it.
    genuine = await post(http, ingress.url, mallory.endpoint_id, request(0, 0))
    assert genuine.status_code == 204
    assert await exists(pair)


@pytest.mark.parametrize(
    ("header", "value"),
    [("ce-id", "p" * 65), ("ce-source", "0" + "a" * 128), ("ce-subject", "0" + "b" * 128)],
    ids=["parcel id", "sender id", "recipient id"],
)
async def test_overlong_envelope_ids_are_refused_for_good(
    http: httpx.AsyncClient, ingress: Ingress, header: str, value: str
) -> None:
    agent = new_agent("alice")
    headers = binary_event_headers(sender_id=agent.endpoint_id)
    headers[header] = value

    response = await http.post(
        ingress.url, headers=headers, content=agent.legacy_pairing_request(new_agent("bob"))
    )

    assert response.status_code == 400  # permanent: a broker would not redeliver it
    assert "longer than" in response.json()["detail"]


async def test_overlong_user_names_start_no_workflow(
    http: httpx.AsyncClient, ingress: Ingress, temporal_client: Client
) -> None:
    alice, bob = new_agent("alice"), new_agent("b" * 129)

    response = await post(
        http, ingress.url, alice.endpoint_id, alice.legacy_pairing_request(bob), PAIRING_REQUEST_TMP
    )

    assert response.status_code == 204  # malformed: logged and dropped
    handle = temporal_client.get_workflow_handle(legacy_workflow_id(alice.veraid_id, bob.veraid_id))
    assert not await exists(handle)


async def test_overlong_target_gets_the_documented_failure(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink, veraid_org: VeraidOrg
) -> None:
    alice = new_veraid_agent(veraid_org, "alice")
    target = "b" * 129 + "@" + veraid_org.domain

    response = await post(http, ingress.url, alice.endpoint_id, alice.pairing_request(target))

    assert response.status_code == 204
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(alice.endpoint_id)), TIMEOUT)
    [failure] = sink.recorder.to(alice.endpoint_id)
    assert failure.content_type == CONTACT_PAIRING_FAILURE
    assert parse_contact_pairing_failure(failure.data) == (
        target,
        ContactPairingFailureReason.INVALID_TARGET_VERAID,
    )


@pytest.mark.parametrize("content_type", [CONTACT_PAIRING_REQUEST, PAIRING_REQUEST_TMP])
async def test_content_over_its_cap_is_refused_for_good(
    http: httpx.AsyncClient, ingress: Ingress, content_type: str
) -> None:
    body = b"\x30" * (MAX_CONTENT_LENGTHS[content_type] + 1)

    response = await post(http, ingress.url, new_agent("alice").endpoint_id, body, content_type)

    assert response.status_code == 413


async def test_body_over_the_ingress_limit_is_refused_unread(ingress: Ingress) -> None:
    # Declared, never sent: the answer comes from the Content-Length alone.
    url = httpx.URL(ingress.url)
    headers = binary_event_headers(sender_id=new_agent("alice").endpoint_id)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"POST / HTTP/1.1\r\nHost: {url.host}\r\nContent-Length: {2 * 1024 * 1024}\r\n"
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write((request + head + "\r\n").encode())
        await writer.drain()
        async with asyncio.timeout(TIMEOUT):
            status_line = await reader.readline()
    finally:
        writer.close()
    assert status_line.split()[1] == b"413"


RESENDS = 120
HISTORY_LIMIT = 60


@pytest.fixture(scope="module")
def short_history_ingress(start_ingress: StartIngress, http_worker: Worker) -> Ingress:
    return start_ingress(
        TEMPORAL_TASK_QUEUE=http_worker.task_queue,
        PAIRING_HISTORY_LIMIT_EVENTS=str(HISTORY_LIMIT),
    )


async def test_endless_valid_resends_continue_as_new_and_lose_nothing(
    http: httpx.AsyncClient,
    short_history_ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    veraid_org: VeraidOrg,
) -> None:
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    url = short_history_ingress.url
    resends = [alice.pairing_request(bob.veraid_id) for _ in range(RESENDS)]
    limit = asyncio.Semaphore(8)

    async def resend(bundle: bytes) -> int:
        async with limit:
            return (await post(http, url, alice.endpoint_id, bundle)).status_code

    # Concurrent, so signals keep arriving while the workflow hands over to its next run.
    assert set(await asyncio.gather(*(resend(bundle) for bundle in resends))) == {204}
    pair = pair_handle(temporal_client, alice.veraid_id, bob.veraid_id)
    async with asyncio.timeout(TIMEOUT):
        while True:
            status = await pair.query("status", result_type=PairingStatus)
            runs = [
                execution
                async for execution in temporal_client.list_workflows(f"WorkflowId = '{pair.id}'")
            ]
            # Every resend was taken by one run or another, none twice.
            if status.pending_requesters and len(runs) > 1:
                break
            await asyncio.sleep(0.2)

    bob_bundle = bob.pairing_request(alice.veraid_id)
    assert (await post(http, url, bob.endpoint_id, bob_bundle)).status_code == 204
    await sink.recorder.wait_for(
        lambda _: bool(sink.recorder.to(alice.endpoint_id) and sink.recorder.to(bob.endpoint_id)),
        TIMEOUT,
    )
    await asyncio.sleep(0.5)
    assert [event.data for event in sink.recorder.to(alice.endpoint_id)] == [bob_bundle]
    [match_for_bob] = sink.recorder.to(bob.endpoint_id)
    assert match_for_bob.data in resends

    handled = 0
    runs = [e async for e in temporal_client.list_workflows(f"WorkflowId = '{pair.id}'")]
    for run in runs:
        history = await temporal_client.get_workflow_handle(
            pair.id, run_id=run.run_id
        ).fetch_history()
        assert len(history.events) < HISTORY_LIMIT + RESENDS  # bounded, whatever arrives
        handled += sum(
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            for event in history.events
        )
    assert handled == RESENDS + 1  # each signal in exactly one run's history
    closed = [run for run in runs if run.status == WorkflowExecutionStatus.CONTINUED_AS_NEW]
    assert len(closed) == len(runs) - 1 >= 1
