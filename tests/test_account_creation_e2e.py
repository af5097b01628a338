"""Account creation end to end: ingress, Temporal, worker, the development VeraId Authority
(with injected faults) and the recording sink."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from temporalio.client import Client, WorkflowHandle, WorkflowHistory

import veraid
from infra.dev_authority import DevAuthorityServer
from infra.sink import ReceivedEvent
from letro.account_messages import parse_account_creation
from letro.content_types import ACCOUNT_CREATION, ACCOUNT_REQUEST
from tests.account_helpers import (
    SERVICE_OID,
    build_request,
    bundle_member_key_matches,
    pss_request,
    pss_spki,
    spki,
)
from tests.conftest import (
    Ingress,
    Sink,
    StartAccountWorker,
    StartIngress,
)
from tests.helpers import SERVER_ENDPOINT_ID, binary_event_headers
from tests.node_account_requests import INTEROP_DIR, node_account_request
from tests.test_cloudevents_interop import requires_node
from tests.test_payload_encryption_e2e import payloads_in
from workflows.account_creation import workflow_id_for as account_workflow_id

pytestmark = pytest.mark.integration

# Short enough for tests: transient failures are retried for this long, then given up.
RETRY_SECONDS = 12
REPLY_DEADLINE = 30.0


@pytest.fixture(scope="module")
def account_ingress(
    start_account_worker: StartAccountWorker, start_ingress: StartIngress
) -> Ingress:
    worker = start_account_worker("letro-accounts", VAUTH_RETRY_TIMEOUT_SECONDS=str(RETRY_SECONDS))
    return start_ingress(TEMPORAL_TASK_QUEUE=worker.task_queue)


def _endpoint() -> str:
    return "0" + uuid.uuid4().hex * 2


def _prefix() -> str:
    return "u" + uuid.uuid4().hex[:9]


async def _send(
    ingress: Ingress, sender: str, content: bytes, parcel_id: str | None = None
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            ingress.url,
            headers=binary_event_headers(
                sender_id=sender, content_type=ACCOUNT_REQUEST, parcel_id=parcel_id
            ),
            content=content,
        )
    assert response.status_code == 204, response.text


async def _replies(sink: Sink, sender: str, count: int = 1) -> list[ReceivedEvent]:
    def arrived(events: list[ReceivedEvent]) -> bool:
        return len([e for e in events if e.subject == sender]) >= count

    await sink.recorder.wait_for(arrived, REPLY_DEADLINE)
    return sink.recorder.to(sender)


async def _inject(server: DevAuthorityServer, **fault: object) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{server.url}/_dev/faults", json=fault)
    assert response.status_code == 204


def _members(server: DevAuthorityServer, prefix: str) -> list[str]:
    return sorted(
        f"{m.name}@{m.organisation}"
        for m in server.authority.members.values()
        if m.name and m.name.startswith(prefix)
    )


def _check_reply(
    event: ReceivedEvent, server: DevAuthorityServer, request_spki: bytes
) -> tuple[str, str, str]:
    assert event.content_type == ACCOUNT_CREATION
    assert event.source == SERVER_ENDPOINT_ID
    requested, locale, assigned, bundle = parse_account_creation(event.data)
    result = veraid.verify_member_id_bundle(
        bundle, SERVICE_OID, datetime.now(UTC), trust_anchors=[server.authority.trust_anchor]
    )
    assert str(result.member) == assigned
    assert bundle_member_key_matches(bundle, request_spki)
    return requested, locale, assigned


async def _no_reply_for(sink: Sink, sender: str, seconds: float = 3.0) -> None:
    await asyncio.sleep(seconds)
    assert sink.recorder.to(sender) == []


async def test_account_created(
    account_ingress: Ingress, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    sender, prefix = _endpoint(), _prefix()
    content, key = pss_request(f" {prefix.upper()} ", "ES-VE")
    await _send(account_ingress, sender, content)
    [reply] = await _replies(sink, sender)
    requested, locale, assigned = _check_reply(reply, dev_authority, pss_spki(key))
    assert (requested, locale) == (f" {prefix.upper()} ", "ES-VE")  # echoed as received
    assert assigned == f"{prefix}@guarapo.cafe"
    assert _members(dev_authority, prefix) == [assigned]


async def test_redelivery_and_resend_get_the_same_reply(
    account_ingress: Ingress,
    sink: Sink,
    dev_authority: DevAuthorityServer,
    temporal_client: Client,
) -> None:
    sender, prefix = _endpoint(), _prefix()
    content, key = pss_request(prefix)
    await _send(account_ingress, sender, content, parcel_id="parcel-1")
    await _send(account_ingress, sender, content, parcel_id="parcel-1")  # redelivery
    first = (await _replies(sink, sender))[0]
    # The run that waits for copies holds neither the key nor the bundle: they left with
    # the run that replied, whose history the namespace's retention deletes.
    handle = temporal_client.get_workflow_handle(account_workflow_id(sender, content))
    history = await _current_run_history(handle)
    stored = b"".join(p.data for e in history.events for p in payloads_in(e))
    _, _, assigned, bundle = parse_account_creation(first.data)
    for secret in (pss_spki(key), bundle):
        assert base64.b64encode(secret) not in stored
    assert assigned.encode() in stored  # what the run keeps, decoded the same way
    replied_run = history.events[0].workflow_execution_started_event_attributes
    replied = await temporal_client.get_workflow_handle(
        handle.id, run_id=replied_run.continued_execution_run_id
    ).fetch_history()
    # The run that replied did hold them: the check above would have found them.
    assert base64.b64encode(bundle) in b"".join(
        p.data for e in replied.events for p in payloads_in(e)
    )
    await _send(account_ingress, sender, content, parcel_id="parcel-2")  # resend
    replies = await _replies(sink, sender, 2)
    # The same reply: the same event id (the endpoint keeps one), the same account.
    assert {e.event_id for e in replies} == {first.event_id}
    assert {_check_reply(e, dev_authority, pss_spki(key)) for e in replies} == {
        _check_reply(first, dev_authority, pss_spki(key))
    }
    assert len(_members(dev_authority, prefix)) == 1


async def _current_run_history(handle: WorkflowHandle[Any, Any]) -> WorkflowHistory:
    """The history of the run after the one that replied (it continues as new)."""
    async with asyncio.timeout(REPLY_DEADLINE):
        while True:
            history = await handle.fetch_history()
            first = history.events[0].workflow_execution_started_event_attributes
            if first.continued_execution_run_id:
                return history
            await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    "fault", [{"statuses": [409]}, {"statuses": [409, 409]}], ids=["409-once", "409-twice"]
)
async def test_taken_names_get_a_numeric_suffix(
    account_ingress: Ingress,
    sink: Sink,
    dev_authority: DevAuthorityServer,
    fault: dict[str, object],
) -> None:
    sender, prefix = _endpoint(), _prefix()
    await _inject(dev_authority, operation="create_member", name=prefix, **fault)
    content, key = pss_request(prefix, "en-gb")
    await _send(account_ingress, sender, content)
    [reply] = await _replies(sink, sender)
    _, _, assigned = _check_reply(reply, dev_authority, pss_spki(key))
    name, _, domain = assigned.partition("@")
    assert domain == "cuppa.fans"
    assert name.startswith(prefix + "-")
    assert len(name) == len(prefix) + 6
    assert name[len(prefix) + 1 :].isdigit()
    assert _members(dev_authority, prefix) == [assigned]


async def test_name_always_taken_gives_up_without_reply(
    account_ingress: Ingress, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    sender, prefix = _endpoint(), _prefix()
    await _inject(dev_authority, operation="create_member", name=prefix, always=409)
    content, _ = pss_request(prefix)
    await _send(account_ingress, sender, content)
    await _no_reply_for(sink, sender)
    attempts = [r for r in dev_authority.authority.requests if r[1].startswith(prefix)]
    assert len(attempts) == 3  # the name, then two suffixed names
    assert _members(dev_authority, prefix) == []


async def test_server_error_then_success(
    account_ingress: Ingress, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    sender, prefix = _endpoint(), _prefix()
    await _inject(dev_authority, operation="create_member", name=prefix, statuses=[500, 503])
    content, key = pss_request(prefix)
    await _send(account_ingress, sender, content)
    [reply] = await _replies(sink, sender)
    assert _check_reply(reply, dev_authority, pss_spki(key))[2] == f"{prefix}@applepie.rocks"
    assert len(_members(dev_authority, prefix)) == 1


@pytest.mark.parametrize(
    ("operation", "fault"),
    [
        ("import_public_key", {"always": 500}),  # transient until the retry deadline
        ("import_public_key", {"always": 400}),  # refused at once
        # The organisation's DNSSEC chain stays unavailable (a bodiless 503) past the window.
        ("get_member_bundle", {"kind": "no-dnssec-chain", "always": True}),
        ("get_member_bundle", {"always": 404}),  # unknown organisation: a bodiless 404
    ],
)
async def test_failure_after_member_creation_deletes_the_member(
    account_ingress: Ingress,
    sink: Sink,
    dev_authority: DevAuthorityServer,
    operation: str,
    fault: dict[str, object],
) -> None:
    sender, prefix = _endpoint(), _prefix()
    await _inject(dev_authority, operation=operation, name=prefix, **fault)
    content, _ = pss_request(prefix)
    await _send(account_ingress, sender, content)

    async def member_created_then_deleted() -> None:
        created = False
        while True:
            created = created or any(
                op == "create_member" and name == prefix
                for op, name in dev_authority.authority.requests
            )
            deleted = any(
                op == "delete_member" and name == prefix
                for op, name in dev_authority.authority.requests
            )
            if created and deleted and not _members(dev_authority, prefix):
                return
            await asyncio.sleep(0.2)

    await asyncio.wait_for(member_created_then_deleted(), RETRY_SECONDS + 20)
    assert sink.recorder.to(sender) == []


async def test_authority_down_for_a_while(
    account_ingress: Ingress, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    sender, prefix = _endpoint(), _prefix()
    content, key = pss_request(prefix)
    await dev_authority.stop()
    try:
        await _send(account_ingress, sender, content)
        await asyncio.sleep(3)
    finally:
        await dev_authority.start()
    [reply] = await _replies(sink, sender)
    _check_reply(reply, dev_authority, pss_spki(key))
    assert len(_members(dev_authority, prefix)) == 1


async def test_bad_requests_are_dropped(
    account_ingress: Ingress, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    prefix = _prefix()
    good, _ = pss_request(prefix)
    signer = ed25519.Ed25519PrivateKey.generate()
    impostor = ed25519.Ed25519PrivateKey.generate()
    badly_signed = build_request(prefix, "en-us", spki(signer), impostor.sign)
    senders = [_endpoint() for _ in range(4)]
    await _send(account_ingress, senders[0], good[:-5])  # truncated
    await _send(account_ingress, senders[1], good + b"\x00")  # trailing garbage
    await _send(account_ingress, senders[2], badly_signed)
    await _send(account_ingress, senders[3], b"not DER at all")
    await asyncio.sleep(3)
    for sender in senders:
        assert sink.recorder.to(sender) == []
    assert not any(name.startswith(prefix) for _, name in dev_authority.authority.requests)


async def test_node_signed_request_creates_an_account(
    account_ingress: Ingress, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    node = requires_node(INTEROP_DIR)
    sender, prefix = _endpoint(), _prefix()
    content, request_spki = await asyncio.to_thread(node_account_request, node, prefix, "en-us")
    await _send(account_ingress, sender, content)
    [reply] = await _replies(sink, sender)
    assert _check_reply(reply, dev_authority, request_spki)[2] == f"{prefix}@applepie.rocks"


async def test_unsupported_key_is_dropped_before_the_authority(
    account_ingress: Ingress, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    sender, prefix = _endpoint(), _prefix()
    key = ec.generate_private_key(ec.SECP256R1())
    content = build_request(
        prefix, "en-us", spki(key), lambda data: key.sign(data, ec.ECDSA(hashes.SHA256()))
    )
    await _send(account_ingress, sender, content)
    await _no_reply_for(sink, sender)
    assert not any(name.startswith(prefix) for _, name in dev_authority.authority.requests)
