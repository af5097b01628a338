"""Records the workflow histories that ``tests/test_replay.py`` replays, from the current code.

    RECORD_HISTORIES=1 python -m pytest tests/record_histories.py

Each test drives one branch of one workflow type through the real stack (ingress, Temporal
dev server, worker, MongoDB, the sink, the development VeraId Authority, the local DNS and
HTTPS servers), waits until the run is closed, checks it took the branch it is named after,
and writes its history to ``tests/histories/<workflow type>.<branch>.json``
(``WorkflowHistory.to_json()``, one event per line). It never overwrites a committed history:
``-k`` selects the cases to record. Without ``RECORD_HISTORIES=1`` every test here is skipped,
and the module is not named ``test_*.py``, so a plain ``pytest`` (CI) never collects it.

Pair workflows remember their parcels for the dedup window (``PairingInput.dedup_window_seconds``,
a week in service): to record a closed run, the first request of a pair is handed over by the
ingress's own routing and hand-over code with that window shortened; the second goes through
the ingress over HTTP. Ids are short and fixed,
so a new recording of an unchanged workflow differs only in keys, times and run ids.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from awala.service_messages import IncomingServiceMessage
from contract.accounts import AccountCreationOutcome
from contract.connection_params import ConnectionParamsOutcome
from contract.pairing import ContactPairingRefusalOutcome, PairingOutcome, PairingStatus
from infra.agents import (
    Agent,
    VeraidAgent,
    VeraidOrg,
    connection_params,
    endpoint_id,
    new_rsa_key,
)
from infra.connparams_servers import Failure, Scenario, Srv, SrvAnswer
from infra.dev_authority import DevAuthorityServer
from ingress.app import _hand_over
from ingress.routing import RoutingOptions, SignalWithStart, route
from letro.content_types import (
    ACCOUNT_REQUEST,
    CONNECTION_PARAMS,
    CONNECTION_PARAMS_REQUEST,
    CONTACT_PAIRING_REQUEST,
    MISCONFIGURED_INTERNET_ENDPOINT,
    PAIRING_AUTH,
    PAIRING_REQUEST_TMP,
)
from letro.veraid_ids import pairing_key
from tests.account_helpers import pss_request
from tests.conftest import (
    ConnectionParamsServers,
    Deployment,
    Ingress,
    StartAccountWorker,
    StartIngress,
    Worker,
)
from tests.helpers import SERVER_ENDPOINT_ID, binary_event_headers
from workflows import account_creation, forwarding
from workflows import connection_params as params_workflow
from workflows.account_creation import AccountCreation
from workflows.connection_params import ConnectionParamsRetrieval
from workflows.forwarding import ForwardServiceMessage
from workflows.legacy_pairing import LegacyContactPairing
from workflows.legacy_pairing import workflow_id_for as legacy_workflow_id
from workflows.veraid_pairing import (
    ContactPairingRefusal,
    VeraidContactPairing,
    refusal_workflow_id,
)
from workflows.veraid_pairing import workflow_id_for as veraid_workflow_id

RECORDING = os.environ.get("RECORD_HISTORIES") == "1"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not RECORDING, reason="records histories only with RECORD_HISTORIES=1"),
]

HISTORIES = Path(__file__).resolve().parent / "histories"
TIMEOUT = 30.0
# How long a pair lingers after its last request in these recordings (an hour in service).
LINGER_SECONDS = 2.0
SHORT_TTL = timedelta(seconds=2)
# A pair continues as new at this history length: after its second request.
HISTORY_LIMIT = 8
ACCOUNT_DEDUP_SECONDS = 2
AUTHORITY_RETRY_SECONDS = 5

ResultT = TypeVar("ResultT")


async def save(handle: WorkflowHandle[Any, Any], branch: str) -> Path:
    """Write the history of ``handle``'s run, which must be closed, as its type and ``branch``."""
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    path = HISTORIES / f"{started.workflow_type.name}.{branch}.json"
    if path.exists():
        # Runs on the old branch may still be in flight, and that file is what proves they
        # replay: a new branch is recorded under a new name (README, "Changing a workflow").
        pytest.fail(f"{path.name} is committed: record the new branch under a new name")
    HISTORIES.mkdir(exist_ok=True)
    path.write_text(one_event_per_line(history.to_json()))
    return path


def one_event_per_line(history_json: str) -> str:
    """The same JSON, smaller than ``to_json``'s indented form and still readable event by event."""
    events = json.loads(history_json)["events"]
    lines = ",\n".join(json.dumps(event, separators=(",", ":")) for event in events)
    return f'{{"events":[\n{lines}\n]}}\n'


async def closed(handle: WorkflowHandle[Any, ResultT]) -> ResultT:
    return await asyncio.wait_for(handle.result(), TIMEOUT)


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            if await check():
                return
            await asyncio.sleep(0.1)


async def post(
    http: httpx.AsyncClient,
    ingress: Ingress,
    *,
    sender_id: str,
    content_type: str,
    content: bytes,
    parcel_id: str,
) -> None:
    headers = binary_event_headers(
        sender_id=sender_id, content_type=content_type, parcel_id=parcel_id
    )
    response = await http.post(ingress.url, headers=headers, content=content)
    assert response.status_code == 204, response.text


# --- Pair workflows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One pairing request as its sender's gateway delivers it."""

    sender_id: str
    content_type: str
    content: bytes
    parcel_id: str

    async def post(self, http: httpx.AsyncClient, ingress: Ingress) -> None:
        await post(
            http,
            ingress,
            sender_id=self.sender_id,
            content_type=self.content_type,
            content=self.content,
            parcel_id=self.parcel_id,
        )

    def message(self) -> IncomingServiceMessage:
        return IncomingServiceMessage(
            self.parcel_id, self.sender_id, SERVER_ENDPOINT_ID, self.content_type, self.content
        )


def legacy_request(requester: Agent, target: Agent, parcel_id: str) -> Request:
    content = requester.legacy_pairing_request(target)
    return Request(requester.endpoint_id, PAIRING_REQUEST_TMP, content, parcel_id)


def veraid_request(requester: VeraidAgent, target: VeraidAgent, parcel_id: str) -> Request:
    content = requester.pairing_request(target.veraid_id)
    return Request(requester.endpoint_id, CONTACT_PAIRING_REQUEST, content, parcel_id)


async def hand_over_lingering_briefly(
    client: Client, request: Request, options: RoutingOptions, task_queue: str
) -> None:
    """Start the pair with ``request`` as the ingress would, but lingering seconds, not an hour."""
    decision = route(request.message(), options, datetime.now(UTC))
    assert isinstance(decision, SignalWithStart), decision
    start_input = replace(decision.start_input, dedup_window_seconds=LINGER_SECONDS)
    await _hand_over(client, replace(decision, start_input=start_input), task_queue)


async def pair_status(handle: WorkflowHandle[Any, Any]) -> PairingStatus:
    status: PairingStatus = await handle.query("status", result_type=PairingStatus)
    return status


async def pending(handle: WorkflowHandle[Any, Any]) -> bool:
    return bool((await pair_status(handle)).pending_requesters)


@dataclass(frozen=True)
class Pair:
    """Two requests for each other, and the pair workflow they meet in."""

    first: Request
    second: Request
    workflow_id: str


def legacy_pair(name: str) -> Pair:
    alice, bob = Agent.named(f"{name}-a"), Agent.named(f"{name}-b")
    return Pair(
        legacy_request(alice, bob, "p1"),
        legacy_request(bob, alice, "p2"),
        legacy_workflow_id(alice.veraid_id, bob.veraid_id),
    )


def veraid_pair(org: VeraidOrg, name: str) -> Pair:
    alice = VeraidAgent(org, f"{name}-a", new_rsa_key())
    bob = VeraidAgent(org, f"{name}-b", new_rsa_key())
    return Pair(
        veraid_request(alice, bob, "p1"),
        veraid_request(bob, alice, "p2"),
        veraid_workflow_id(pairing_key(alice.veraid_id), pairing_key(bob.veraid_id)),
    )


@pytest.fixture(scope="module")
def routing(veraid_org: VeraidOrg) -> RoutingOptions:
    """The session ingress's routing options (``VERAID_TRUST_ANCHORS``: the session's org)."""
    return RoutingOptions(
        pairing_request_ttl=timedelta(days=90),
        veraid_trust_anchors=(veraid_org.chain.trust_anchor,),
    )


@pytest.fixture(scope="module")
def short_history_ingress(start_ingress: StartIngress, http_worker: Worker) -> Ingress:
    return start_ingress(
        TEMPORAL_TASK_QUEUE=http_worker.task_queue,
        PAIRING_HISTORY_LIMIT_EVENTS=str(HISTORY_LIMIT),
    )


PairCase = Callable[[VeraidOrg, str], Pair]
PAIR_KINDS: dict[str, tuple[type[Any], PairCase]] = {
    "legacy": (LegacyContactPairing, lambda org, name: legacy_pair(name)),
    "veraid": (VeraidContactPairing, veraid_pair),
}


@pytest.mark.parametrize("kind", PAIR_KINDS)
async def test_pair_match(
    kind: str,
    http: httpx.AsyncClient,
    temporal_client: Client,
    ingress: Ingress,
    http_worker: Worker,
    routing: RoutingOptions,
    veraid_org: VeraidOrg,
) -> None:
    workflow, make_pair = PAIR_KINDS[kind]
    pair = make_pair(veraid_org, f"{kind[0]}m")
    handle = temporal_client.get_workflow_handle_for(workflow.run, pair.workflow_id)
    await hand_over_lingering_briefly(temporal_client, pair.first, routing, http_worker.task_queue)
    # Handled alone, so the first request is stored before the second matches it.
    await until(lambda: pending(handle))
    await pair.second.post(http, ingress)

    assert await closed(handle) == PairingOutcome(matches=1, expirations=0)
    await save(handle, "match")


@pytest.mark.parametrize("kind", PAIR_KINDS)
async def test_pair_expiry(
    kind: str,
    temporal_client: Client,
    http_worker: Worker,
    routing: RoutingOptions,
    veraid_org: VeraidOrg,
) -> None:
    workflow, make_pair = PAIR_KINDS[kind]
    pair = make_pair(veraid_org, f"{kind[0]}x")
    handle = temporal_client.get_workflow_handle_for(workflow.run, pair.workflow_id)
    short_lived = replace(routing, pairing_request_ttl=SHORT_TTL)
    await hand_over_lingering_briefly(
        temporal_client, pair.first, short_lived, http_worker.task_queue
    )

    assert await closed(handle) == PairingOutcome(matches=0, expirations=1)
    await save(handle, "expiry")


@pytest.mark.parametrize("kind", PAIR_KINDS)
async def test_pair_continue_as_new(
    kind: str,
    http: httpx.AsyncClient,
    temporal_client: Client,
    short_history_ingress: Ingress,
    veraid_org: VeraidOrg,
) -> None:
    """One side resends until the run's history reaches the limit: the first run is recorded."""
    _, make_pair = PAIR_KINDS[kind]
    pair = make_pair(veraid_org, f"{kind[0]}c")
    await pair.first.post(http, short_history_ingress)
    first_run = (await temporal_client.get_workflow_handle(pair.workflow_id).describe()).run_id
    handle = temporal_client.get_workflow_handle(pair.workflow_id, run_id=first_run)

    async def continued() -> bool:
        status = (await handle.describe()).status
        return status == WorkflowExecutionStatus.CONTINUED_AS_NEW

    for resend in range(2, 10):
        # One at a time, each in its own workflow task, as a user resending would.
        handled = (await pair_status(handle)).requests_handled
        await replace(pair.first, parcel_id=f"p{resend}").post(http, short_history_ingress)

        async def taken(before: int = handled) -> bool:
            if await continued():
                return True
            return (await pair_status(handle)).requests_handled > before

        await until(taken)
        if await continued():
            break
    assert await continued()
    await save(handle, "continue-as-new")


async def test_refusal(
    http: httpx.AsyncClient, temporal_client: Client, ingress: Ingress, veraid_org: VeraidOrg
) -> None:
    alice = VeraidAgent(veraid_org, "rf-a", new_rsa_key())
    # A request for oneself: verified, then refused with INVALID_TARGET_VERAID.
    content = alice.pairing_request(alice.veraid_id)
    await post(
        http,
        ingress,
        sender_id=alice.endpoint_id,
        content_type=CONTACT_PAIRING_REQUEST,
        content=content,
        parcel_id="p1",
    )
    handle: WorkflowHandle[Any, ContactPairingRefusalOutcome] = (
        temporal_client.get_workflow_handle_for(
            ContactPairingRefusal.run, refusal_workflow_id(alice.endpoint_id, "p1")
        )
    )

    assert await closed(handle) == ContactPairingRefusalOutcome("INVALID_TARGET_VERAID")
    await save(handle, "failure-reply")


async def test_forward(http: httpx.AsyncClient, temporal_client: Client, ingress: Ingress) -> None:
    granter, grantee = new_rsa_key(), new_rsa_key()
    await post(
        http,
        ingress,
        sender_id=endpoint_id(granter),
        content_type=PAIRING_AUTH,
        content=connection_params(granter, grantee),
        parcel_id="p1",
    )
    handle: WorkflowHandle[Any, None] = temporal_client.get_workflow_handle_for(
        ForwardServiceMessage.run, forwarding.workflow_id_for(endpoint_id(granter), "p1")
    )

    await closed(handle)
    await save(handle, "forward")


# --- Account creation -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def account_ingress(
    start_account_worker: StartAccountWorker, start_ingress: StartIngress
) -> Ingress:
    worker = start_account_worker(
        "letro-accounts-recording",
        VAUTH_RETRY_TIMEOUT_SECONDS=str(AUTHORITY_RETRY_SECONDS),
        DEDUP_WINDOW_SECONDS=str(ACCOUNT_DEDUP_SECONDS),
    )
    return start_ingress(TEMPORAL_TASK_QUEUE=worker.task_queue)


async def request_account(
    http: httpx.AsyncClient, client: Client, ingress: Ingress, user_name: str
) -> WorkflowHandle[AccountCreation, AccountCreationOutcome]:
    content, _ = pss_request(user_name)
    sender_id = endpoint_id(new_rsa_key())
    await post(
        http,
        ingress,
        sender_id=sender_id,
        content_type=ACCOUNT_REQUEST,
        content=content,
        parcel_id="p1",
    )
    return client.get_workflow_handle_for(
        AccountCreation.run, account_creation.workflow_id_for(sender_id, content)
    )


async def test_account_created(
    http: httpx.AsyncClient, temporal_client: Client, account_ingress: Ingress
) -> None:
    # Since the "forget-key-and-bundle-after-replying" patch: the run that replies continues
    # as new, and the next one answers the copies. (created.json holds the unpatched branch.)
    content, _ = pss_request("acok")
    sender_id = endpoint_id(new_rsa_key())
    for parcel_id in ("p1", "p2"):  # the request, then a copy once the account exists
        await post(
            http,
            account_ingress,
            sender_id=sender_id,
            content_type=ACCOUNT_REQUEST,
            content=content,
            parcel_id=parcel_id,
        )
        if parcel_id == "p1":
            await asyncio.sleep(ACCOUNT_DEDUP_SECONDS / 4)
    handle: WorkflowHandle[Any, AccountCreationOutcome] = temporal_client.get_workflow_handle_for(
        AccountCreation.run, account_creation.workflow_id_for(sender_id, content)
    )

    assert await closed(handle) == AccountCreationOutcome("acok@applepie.rocks", 2)
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    first_run = temporal_client.get_workflow_handle(
        handle.id, run_id=started.continued_execution_run_id
    )
    await save(first_run, "created-then-continued-as-new")
    await save(handle, "copy-answered-after-continue-as-new")


async def test_account_saga_compensation(
    http: httpx.AsyncClient,
    temporal_client: Client,
    account_ingress: Ingress,
    dev_authority: DevAuthorityServer,
) -> None:
    # The Authority refuses the key for good (400): the member just created is deleted.
    dev_authority.authority.inject("import_public_key", "acsaga", [], always=400)
    handle = await request_account(http, temporal_client, account_ingress, "acsaga")

    assert await closed(handle) == AccountCreationOutcome(None, 0)
    assert ("delete_member", "acsaga") in dev_authority.authority.requests
    await save(handle, "saga-compensation")


async def test_account_name_taken_then_suffix(
    http: httpx.AsyncClient,
    temporal_client: Client,
    account_ingress: Ingress,
    dev_authority: DevAuthorityServer,
) -> None:
    dev_authority.authority.inject("create_member", "actaken", [409], always=None)
    handle = await request_account(http, temporal_client, account_ingress, "actaken")

    outcome = await closed(handle)
    assert outcome.assigned_user_id is not None
    assert outcome.assigned_user_id.startswith("actaken-")
    await save(handle, "name-taken-then-suffix")


# Since the "patient-authority-retries" patch every run records its marker, so each branch
# above is recorded again under a new name by the cases below (the files above hold the
# branches without it, which runs started before the patch still take).


async def test_account_created_patient(
    http: httpx.AsyncClient, temporal_client: Client, account_ingress: Ingress
) -> None:
    content, _ = pss_request("acpat")
    sender_id = endpoint_id(new_rsa_key())
    for parcel_id in ("p1", "p2"):  # the request, then a copy once the account exists
        await post(
            http,
            account_ingress,
            sender_id=sender_id,
            content_type=ACCOUNT_REQUEST,
            content=content,
            parcel_id=parcel_id,
        )
        if parcel_id == "p1":
            await asyncio.sleep(ACCOUNT_DEDUP_SECONDS / 4)
    handle: WorkflowHandle[Any, AccountCreationOutcome] = temporal_client.get_workflow_handle_for(
        AccountCreation.run, account_creation.workflow_id_for(sender_id, content)
    )

    assert await closed(handle) == AccountCreationOutcome("acpat@applepie.rocks", 2)
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    first_run = temporal_client.get_workflow_handle(
        handle.id, run_id=started.continued_execution_run_id
    )
    await save(first_run, "patient-created-then-continued-as-new")
    await save(handle, "patient-copy-answered-after-continue-as-new")


async def test_account_unknown_organisation_compensation(
    http: httpx.AsyncClient,
    temporal_client: Client,
    account_ingress: Ingress,
    dev_authority: DevAuthorityServer,
) -> None:
    # The bundle is a bodiless 404 (as for an organisation the Authority lacks): refused for
    # good, so the member just created is deleted.
    dev_authority.authority.inject("get_member_bundle", "acorg", [], always=404)
    handle = await request_account(http, temporal_client, account_ingress, "acorg")

    assert await closed(handle) == AccountCreationOutcome(None, 0)
    assert ("delete_member", "acorg") in dev_authority.authority.requests
    await save(handle, "patient-saga-compensation")


async def test_account_possible_orphan_then_suffix(
    http: httpx.AsyncClient,
    temporal_client: Client,
    account_ingress: Ingress,
    dev_authority: DevAuthorityServer,
) -> None:
    # The member is created and the answer lost; the retry meets 409: a possible orphan.
    dev_authority.authority.inject("create_member", "acorph", [], None, drop_responses=1)
    handle = await request_account(http, temporal_client, account_ingress, "acorph")

    outcome = await closed(handle)
    assert outcome.assigned_user_id is not None
    assert outcome.assigned_user_id.startswith("acorph-")
    assert [op for op, name in dev_authority.authority.requests if name == "acorph"] == [
        "create_member",
        "create_member",
    ]
    # The run that created the account, not the one it continued as to answer copies.
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    first_run = temporal_client.get_workflow_handle(
        handle.id, run_id=started.continued_execution_run_id
    )
    await save(first_run, "patient-possible-orphan-then-suffix")


# --- Connection parameters --------------------------------------------------------------------


PARAMS_CASES: dict[str, tuple[Callable[[ConnectionParamsServers], Any], str, bool]] = {
    # branch: (what the endpoint's DNS record says, reply content type, gave up after retries)
    "served": (lambda s: SrvAnswer((Srv(s.port(Scenario.GOOD)),)), CONNECTION_PARAMS, False),
    "misconfigured": (lambda s: Failure.NXDOMAIN, MISCONFIGURED_INTERNET_ENDPOINT, False),
    # 500 twice, then the parameters.
    "transient-retry-then-success": (
        lambda s: SrvAnswer((Srv(s.port(Scenario.FLAKY)),)),
        CONNECTION_PARAMS,
        False,
    ),
    "retry-window-give-up": (
        lambda s: SrvAnswer((Srv(s.port(Scenario.SERVER_ERROR)),)),
        MISCONFIGURED_INTERNET_ENDPOINT,
        True,
    ),
}


@pytest.mark.parametrize("branch", PARAMS_CASES)
async def test_connection_params(
    branch: str,
    http: httpx.AsyncClient,
    temporal_client: Client,
    dns_deployment: Deployment,
    connection_params_servers: ConnectionParamsServers,
) -> None:
    behaviour, content_type, gave_up = PARAMS_CASES[branch]
    domain = f"{branch}.example"
    connection_params_servers.dns.set(
        f"_awala-pdc._tcp.{domain}.", behaviour(connection_params_servers)
    )
    sender_id = "0" + "c" * 64
    await post(
        http,
        dns_deployment.ingress,
        sender_id=sender_id,
        content_type=CONNECTION_PARAMS_REQUEST,
        content=domain.encode(),
        parcel_id=branch,
    )
    handle: WorkflowHandle[Any, ConnectionParamsOutcome] = temporal_client.get_workflow_handle_for(
        ConnectionParamsRetrieval.run, params_workflow.workflow_id_for(sender_id, branch)
    )

    outcome = await closed(handle)
    assert (outcome.content_type, outcome.gave_up_after_retries) == (content_type, gave_up)
    assert isinstance(outcome, ConnectionParamsOutcome)
    await save(handle, branch)


# --- The pairs' patched branch ----------------------------------------------------------------


@pytest.mark.parametrize("kind", PAIR_KINDS)
async def test_pair_read_back_and_match_in_one_step(
    kind: str,
    http: httpx.AsyncClient,
    temporal_client: Client,
    ingress: Ingress,
    http_worker: Worker,
    routing: RoutingOptions,
    veraid_org: VeraidOrg,
) -> None:
    """Since ``PAIRS_2026_12``: the first store reads MongoDB back, and the match is one
    local activity."""
    workflow, make_pair = PAIR_KINDS[kind]
    pair = make_pair(veraid_org, f"{kind[0]}f")
    handle = temporal_client.get_workflow_handle_for(workflow.run, pair.workflow_id)
    await hand_over_lingering_briefly(temporal_client, pair.first, routing, http_worker.task_queue)
    await until(lambda: pending(handle))
    await pair.second.post(http, ingress)

    assert await closed(handle) == PairingOutcome(matches=1, expirations=0)
    await save(handle, "read-back-match-in-one-step")
