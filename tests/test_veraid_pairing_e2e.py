"""VeraId contact pairing through the real stack: ingress, Temporal, worker, MongoDB, sink.

Requests are real SignatureBundles made with the Python ``veraid`` package over a mock DNSSEC
chain that the session's ingress trusts (``VERAID_TRUST_ANCHORS``); the JS-made ones are in
``test_pairing_interop.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pymongo import AsyncMongoClient
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Replayer

import veraid
from contract.pairing import ContactPairingRefusalOutcome, PairingStatus
from infra.agents import VeraidAgent, VeraidOrg, make_org, new_agent, new_veraid_agent, spki
from letro.contact_pairing import ContactPairingFailureReason, parse_contact_pairing_failure
from letro.content_types import CONTACT_PAIRING_FAILURE, CONTACT_PAIRING_REQUEST
from letro.veraid_ids import pairing_key
from tests.conftest import Ingress, Sink, StartIngress, Worker
from tests.helpers import (
    SERVER_ENDPOINT_ID,
    binary_event_headers,
    one_shot_outcome,
    requests_collection,
    signal_count,
)
from workflows.veraid_pairing import (
    ContactPairingRefusal,
    VeraidContactPairing,
    refusal_workflow_id,
    workflow_id_for,
)

pytestmark = pytest.mark.integration

TIMEOUT = 20.0


async def send(
    http: httpx.AsyncClient,
    url: str,
    sender: VeraidAgent,
    bundle: bytes,
    *,
    parcel_id: str | None = None,
    sender_id: str | None = None,
) -> str:
    """POST a pairing request; return its parcel id."""
    headers = binary_event_headers(
        sender_id=sender_id or sender.endpoint_id,
        content_type=CONTACT_PAIRING_REQUEST,
        parcel_id=parcel_id,
    )
    response = await http.post(url, headers=headers, content=bundle)
    assert response.status_code == 204, response.text
    return headers["ce-id"]


async def refusal_reason(client: Client, sender_id: str, parcel_id: str) -> str:
    """Wait for the parcel's refusal workflow to conclude and say what reason it sent."""
    workflow_id = refusal_workflow_id(sender_id, parcel_id)
    result = await one_shot_outcome(client, workflow_id, ContactPairingRefusalOutcome, TIMEOUT)
    return result.reason


async def refusal_logged(log_file: Path | None, parcel_id: str) -> dict[str, Any]:
    """Wait for the ingress's one log line saying why the parcel's request was refused."""
    assert log_file is not None
    async with asyncio.timeout(TIMEOUT):
        while True:
            text = await asyncio.to_thread(log_file.read_text)
            lines = [
                json.loads(line)
                for line in text.splitlines()
                if parcel_id in line and "Refused" in line
            ]
            if lines:
                [line] = lines
                return dict(line)
            await asyncio.sleep(0.1)


async def pair_status(client: Client, a: str, b: str) -> PairingStatus:
    handle = client.get_workflow_handle(workflow_id_for(pairing_key(a), pairing_key(b)))
    status: PairingStatus = await handle.query("status", result_type=PairingStatus)
    return status


async def wait_for_status(
    client: Client, a: str, b: str, predicate: Any, deadline: float = TIMEOUT
) -> PairingStatus:
    async with asyncio.timeout(deadline):
        while True:
            try:
                status = await pair_status(client, a, b)
                if predicate(status):
                    return status
            except RPCError:
                pass
            await asyncio.sleep(0.1)


async def wait_for_events(sink: Sink, *agents: VeraidAgent) -> None:
    await sink.recorder.wait_for(
        lambda _: all(sink.recorder.to(agent.endpoint_id) for agent in agents), TIMEOUT
    )


@pytest.mark.parametrize("alice_first", [True, False], ids=["alice-first", "bob-first"])
async def test_requests_pair_in_either_order(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    veraid_org: VeraidOrg,
    alice_first: bool,
) -> None:
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    alice_bundle = alice.pairing_request(bob.veraid_id)
    bob_bundle = bob.pairing_request(alice.veraid_id)
    first, first_bundle, second, second_bundle = (
        (alice, alice_bundle, bob, bob_bundle)
        if alice_first
        else (bob, bob_bundle, alice, alice_bundle)
    )

    await send(http, ingress.url, first, first_bundle)
    await wait_for_status(
        temporal_client, alice.veraid_id, bob.veraid_id, lambda s: s.pending_requesters
    )
    stored = await requests_collection(mongo_client).find_one({"requesterVeraId": first.veraid_id})
    assert stored is not None
    assert stored["kind"] == "veraid"
    assert stored["targetVeraId"] == second.veraid_id
    assert stored["requesterEndpointId"] == first.endpoint_id
    assert bytes(stored["requesterIdKey"]) == spki(first.endpoint_key)
    assert bytes(stored["signatureBundle"]) == first_bundle

    await send(http, ingress.url, second, second_bundle)
    await wait_for_events(sink, alice, bob)

    [to_alice] = sink.recorder.to(alice.endpoint_id)
    [to_bob] = sink.recorder.to(bob.endpoint_id)
    assert (to_alice.content_type, to_alice.data) == (CONTACT_PAIRING_REQUEST, bob_bundle)
    assert (to_bob.content_type, to_bob.data) == (CONTACT_PAIRING_REQUEST, alice_bundle)
    assert to_alice.source == SERVER_ENDPOINT_ID
    await wait_for_status(temporal_client, alice.veraid_id, bob.veraid_id, lambda s: s.matches)
    assert (
        await requests_collection(mongo_client).count_documents(
            {"requesterVeraId": {"$in": [alice.veraid_id, bob.veraid_id]}}
        )
        == 0
    )


async def test_ids_match_whatever_their_case(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink, veraid_org: VeraidOrg
) -> None:
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    shouted_bob = f"{bob.user_name.upper()}@{veraid_org.domain.upper()}"
    alice_bundle = alice.pairing_request(shouted_bob)
    bob_bundle = bob.pairing_request(alice.veraid_id.title())

    await send(http, ingress.url, alice, alice_bundle)
    await send(http, ingress.url, bob, bob_bundle)
    await wait_for_events(sink, alice, bob)

    assert [e.data for e in sink.recorder.to(alice.endpoint_id)] == [bob_bundle]
    assert [e.data for e in sink.recorder.to(bob.endpoint_id)] == [alice_bundle]


async def test_concurrent_requests_pair_exactly_once(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink, veraid_org: VeraidOrg
) -> None:
    pairs = [
        (new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob"))
        for _ in range(4)
    ]
    bundles = {
        (x.veraid_id, y.veraid_id): x.pairing_request(y.veraid_id)
        for alice, bob in pairs
        for x, y in ((alice, bob), (bob, alice))
    }
    await asyncio.gather(
        *(
            send(http, ingress.url, x, bundles[(x.veraid_id, y.veraid_id)])
            for alice, bob in pairs
            for x, y in ((alice, bob), (bob, alice))
        )
    )
    await wait_for_events(sink, *(agent for pair in pairs for agent in pair))
    await asyncio.sleep(1)  # room for a duplicate to show up, were there one
    for alice, bob in pairs:
        assert [e.data for e in sink.recorder.to(alice.endpoint_id)] == [
            bundles[(bob.veraid_id, alice.veraid_id)]
        ]
        assert [e.data for e in sink.recorder.to(bob.endpoint_id)] == [
            bundles[(alice.veraid_id, bob.veraid_id)]
        ]


async def test_redelivery_has_no_second_effect(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    veraid_org: VeraidOrg,
) -> None:
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    alice_bundle = alice.pairing_request(bob.veraid_id)
    bob_bundle = bob.pairing_request(alice.veraid_id)

    await send(http, ingress.url, alice, alice_bundle, parcel_id="alice-parcel")
    await send(http, ingress.url, alice, alice_bundle, parcel_id="alice-parcel")
    await send(http, ingress.url, bob, bob_bundle, parcel_id="bob-parcel")
    await wait_for_events(sink, alice, bob)
    # Late redeliveries, after the match.
    await send(http, ingress.url, alice, alice_bundle, parcel_id="alice-parcel")
    await send(http, ingress.url, bob, bob_bundle, parcel_id="bob-parcel")
    await asyncio.sleep(1)

    status = await pair_status(temporal_client, alice.veraid_id, bob.veraid_id)
    assert status.matches == 1
    # One message each (a match resent under its own event id is the same message: see
    # test_legacy_pairing_e2e.test_redelivered_event_produces_no_duplicate_output).
    assert len({e.event_id for e in sink.recorder.to(alice.endpoint_id)}) == 1
    assert len({e.event_id for e in sink.recorder.to(bob.endpoint_id)}) == 1


async def test_resend_replaces_the_stored_request(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    veraid_org: VeraidOrg,
) -> None:
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    # Alice reinstalled Letro: same VeraId id, a new Awala endpoint.
    alice_moved = new_veraid_agent(veraid_org, "x")
    alice_moved = VeraidAgent(veraid_org, alice.user_name, alice_moved.endpoint_key)
    collection = requests_collection(mongo_client)

    await send(http, ingress.url, alice, alice.pairing_request(bob.veraid_id))
    await wait_for_status(
        temporal_client, alice.veraid_id, bob.veraid_id, lambda s: s.pending_requesters
    )
    original = await collection.find_one({"requesterVeraId": alice.veraid_id})
    assert original is not None
    resent_bundle = alice_moved.pairing_request(bob.veraid_id)
    await send(http, ingress.url, alice_moved, resent_bundle)
    async with asyncio.timeout(TIMEOUT):
        while True:
            updated = await collection.find_one({"requesterVeraId": alice.veraid_id})
            if updated and updated["requesterEndpointId"] == alice_moved.endpoint_id:
                break
            await asyncio.sleep(0.1)
    assert bytes(updated["signatureBundle"]) == resent_bundle
    assert updated["creationDate"] == original["creationDate"]

    await send(http, ingress.url, bob, bob.pairing_request(alice.veraid_id))
    await wait_for_events(sink, alice_moved, bob)
    assert [e.data for e in sink.recorder.to(bob.endpoint_id)] == [resent_bundle]
    assert sink.recorder.to(alice.endpoint_id) == []


async def test_unmatched_request_expires(
    http: httpx.AsyncClient,
    start_ingress: StartIngress,
    http_worker: Worker,
    temporal_client: Client,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    veraid_org: VeraidOrg,
) -> None:
    short_lived = start_ingress(
        TEMPORAL_TASK_QUEUE=http_worker.task_queue, PAIRING_REQUEST_TTL_SECONDS="2"
    )
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    await send(http, short_lived.url, alice, alice.pairing_request(bob.veraid_id))
    await wait_for_status(
        temporal_client, alice.veraid_id, bob.veraid_id, lambda s: s.pending_requesters
    )
    collection = requests_collection(mongo_client)
    assert await collection.count_documents({"requesterVeraId": alice.veraid_id}) == 1

    status = await wait_for_status(
        temporal_client, alice.veraid_id, bob.veraid_id, lambda s: s.expirations == 1
    )
    assert status.pending_requesters == []
    assert await collection.count_documents({"requesterVeraId": alice.veraid_id}) == 0


async def test_veraid_and_legacy_requests_never_match(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    veraid_org: VeraidOrg,
) -> None:
    alice = new_veraid_agent(veraid_org, "alice")
    bob = new_agent("bob", veraid_org.domain)
    await send(http, ingress.url, alice, alice.pairing_request(bob.veraid_id))
    await wait_for_status(
        temporal_client, alice.veraid_id, bob.veraid_id, lambda s: s.pending_requesters
    )
    # Bob answers with the legacy protocol: same ids, the other protocol.
    legacy = binary_event_headers(sender_id=bob.endpoint_id)
    key = base64.b64encode(bob.id_key).decode()
    body = f"{bob.veraid_id},{alice.veraid_id},{key}".encode()
    assert (await http.post(ingress.url, headers=legacy, content=body)).status_code == 204
    await asyncio.sleep(2)

    assert sink.recorder.to(alice.endpoint_id) == []
    assert sink.recorder.to(bob.endpoint_id) == []
    kinds = await requests_collection(mongo_client).distinct(
        "kind", {"requesterVeraId": {"$in": [alice.veraid_id, bob.veraid_id]}}
    )
    assert sorted(kinds, key=str) == [None, "veraid"]


# --- Refusals: a ContactPairingFailure to the requester, nothing stored -------------------------


Refuse = Callable[..., Awaitable[None]]


@pytest.fixture
def assert_refused(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> Refuse:
    """Send a request; check its sender gets one failure (even on redelivery), nothing stored."""

    async def check(
        sender: VeraidAgent,
        bundle: bytes,
        target: str,
        reason: ContactPairingFailureReason,
        sender_id: str | None = None,
    ) -> None:
        recipient = sender_id or sender.endpoint_id
        parcel_id = await send(http, ingress.url, sender, bundle, sender_id=recipient)
        await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(recipient)), TIMEOUT)
        # A redelivery of the refused parcel earns no second failure.
        await send(http, ingress.url, sender, bundle, sender_id=recipient, parcel_id=parcel_id)
        await asyncio.sleep(1)
        [failure] = sink.recorder.to(recipient)
        assert failure.content_type == CONTACT_PAIRING_FAILURE
        assert parse_contact_pairing_failure(failure.data) == (target, reason)
        stored = requests_collection(mongo_client).count_documents(
            {"requesterVeraId": sender.veraid_id}
        )
        assert await stored == 0

    return check


async def test_bot_requester_is_refused(assert_refused: Refuse, veraid_org: VeraidOrg) -> None:
    bot = new_veraid_agent(veraid_org, "bot")
    target = "bob@tickety.boo"
    await assert_refused(
        bot,
        veraid_org.bot_request(bot, target),
        target,
        ContactPairingFailureReason.INVALID_REQUESTER_VERAID,
    )


INVALID_TARGETS = {
    "bare domain": "tickety.boo",
    "two at signs": "bob@org@tickety.boo",
    "bad domain": "bob@tickety dot boo",
    "trailing dot": "bob@tickety.boo.",
    "tab in user name": "bo\tb@tickety.boo",
    "empty": "",
}


@pytest.mark.parametrize("target", INVALID_TARGETS.values(), ids=INVALID_TARGETS.keys())
async def test_invalid_target_is_refused(
    assert_refused: Refuse, veraid_org: VeraidOrg, target: str
) -> None:
    alice = new_veraid_agent(veraid_org, "alice")
    await assert_refused(
        alice,
        alice.pairing_request(target),
        target,
        ContactPairingFailureReason.INVALID_TARGET_VERAID,
    )


async def test_requester_as_target_is_refused(
    assert_refused: Refuse, veraid_org: VeraidOrg
) -> None:
    alice = new_veraid_agent(veraid_org, "alice")
    target = alice.veraid_id.upper()
    await assert_refused(
        alice,
        alice.pairing_request(target),
        target,
        ContactPairingFailureReason.INVALID_TARGET_VERAID,
    )


async def test_non_rsa_requester_key_is_refused(
    assert_refused: Refuse, veraid_org: VeraidOrg
) -> None:
    alice = new_veraid_agent(veraid_org, "alice")
    ec_key = spki(ec.generate_private_key(ec.SECP256R1()))
    await assert_refused(
        alice,
        alice.pairing_request("bob@tickety.boo", key_spki=ec_key),
        "bob@tickety.boo",
        ContactPairingFailureReason.INVALID_REQUESTER_AWALA_KEY,
    )


async def test_key_of_another_endpoint_is_refused(
    assert_refused: Refuse, veraid_org: VeraidOrg
) -> None:
    alice, mallory = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "m")
    await assert_refused(
        alice,
        alice.pairing_request("bob@tickety.boo"),
        "bob@tickety.boo",
        ContactPairingFailureReason.INVALID_REQUESTER_AWALA_KEY,
        sender_id=mallory.endpoint_id,
    )


# --- Drops: logged, no reply, nothing stored ----------------------------------------------------


def _untrusted_bundle(org: VeraidOrg) -> bytes:
    stranger = new_veraid_agent(make_org(org.domain), "alice")
    return stranger.pairing_request("bob@tickety.boo")


DROPS = {
    "not DER": lambda agent, org: b"\x30\x03\x02\x01",
    "empty": lambda agent, org: b"",
    "another service": lambda agent, org: agent.pairing_request(
        "bob@tickety.boo", service_oid=veraid.OID_TEST_SERVICE
    ),
    "untrusted DNSSEC root": lambda agent, org: _untrusted_bundle(org),
    "plaintext not a ContactPairingRequest": lambda agent, org: agent.pairing_request(
        "", plaintext=b"alice@applepie.rocks,bob@tickety.boo,a2V5"
    ),
}


@pytest.mark.parametrize("make_bundle", DROPS.values(), ids=DROPS.keys())
async def test_unusable_requests_are_dropped(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    veraid_org: VeraidOrg,
    make_bundle: Any,
) -> None:
    alice = new_veraid_agent(veraid_org, "alice")
    parcel_id = await send(http, ingress.url, alice, make_bundle(alice, veraid_org))
    # One log line says who sent it and why it was refused.
    line = await refusal_logged(ingress.process.log_file, parcel_id)
    assert line["peerId"] == alice.endpoint_id
    assert line["reason"]
    await asyncio.sleep(0.5)
    assert sink.recorder.to(alice.endpoint_id) == []
    stored = requests_collection(mongo_client).count_documents(
        {"requesterEndpointId": alice.endpoint_id}
    )
    assert await stored == 0


async def test_forged_request_cannot_complete_a_pair(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    veraid_org: VeraidOrg,
) -> None:
    """A bundle that claims Bob's id but does not verify never reaches the pair."""
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    # Mallory controls a DNSSEC root nobody trusts and signs as Bob with it.
    forger = VeraidAgent(make_org(veraid_org.domain), bob.user_name, bob.endpoint_key)
    alice_bundle = alice.pairing_request(bob.veraid_id)
    await send(http, ingress.url, alice, alice_bundle)
    await wait_for_status(
        temporal_client, alice.veraid_id, bob.veraid_id, lambda s: s.pending_requesters
    )

    pair = temporal_client.get_workflow_handle(
        workflow_id_for(pairing_key(alice.veraid_id), pairing_key(bob.veraid_id))
    )
    signals = await signal_count(pair)

    forged_parcel = await send(http, ingress.url, bob, forger.pairing_request(alice.veraid_id))
    await refusal_logged(ingress.process.log_file, forged_parcel)
    status = await pair_status(temporal_client, alice.veraid_id, bob.veraid_id)
    assert (status.pending_requesters, status.matches) == ([pairing_key(alice.veraid_id)], 0)
    assert await signal_count(pair) == signals  # it never reached the pair's history
    assert sink.recorder.to(alice.endpoint_id) == []

    bob_bundle = bob.pairing_request(alice.veraid_id)
    await send(http, ingress.url, bob, bob_bundle)
    await wait_for_events(sink, alice, bob)
    assert [e.data for e in sink.recorder.to(alice.endpoint_id)] == [bob_bundle]
    assert [e.data for e in sink.recorder.to(bob.endpoint_id)] == [alice_bundle]


async def test_workflows_replay_deterministically(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    veraid_org: VeraidOrg,
) -> None:
    alice, bob = new_veraid_agent(veraid_org, "alice"), new_veraid_agent(veraid_org, "bob")
    await send(http, ingress.url, alice, alice.pairing_request(bob.veraid_id))
    await send(http, ingress.url, bob, bob.pairing_request(alice.veraid_id))
    # A refusal (a request for oneself).
    parcel_id = await send(http, ingress.url, bob, bob.pairing_request(bob.veraid_id))
    await sink.recorder.wait_for(
        lambda _: (
            len(sink.recorder.to(alice.endpoint_id)) == 1
            and len(sink.recorder.to(bob.endpoint_id)) == 2
        ),
        TIMEOUT,
    )
    await wait_for_status(temporal_client, alice.veraid_id, bob.veraid_id, lambda s: s.matches)
    reason = await refusal_reason(temporal_client, bob.endpoint_id, parcel_id)
    assert reason == ContactPairingFailureReason.INVALID_TARGET_VERAID.name

    replayer = Replayer(workflows=[VeraidContactPairing, ContactPairingRefusal])
    pair = temporal_client.get_workflow_handle(
        workflow_id_for(pairing_key(alice.veraid_id), pairing_key(bob.veraid_id))
    )
    await replayer.replay_workflow(await pair.fetch_history())
    refusal = temporal_client.get_workflow_handle(refusal_workflow_id(bob.endpoint_id, parcel_id))
    await replayer.replay_workflow(await refusal.fetch_history())
