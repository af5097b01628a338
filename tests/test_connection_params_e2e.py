"""Connection parameters retrieval through the real stack.

Ingress over HTTP, Temporal, a worker resolving with the test DNS server (plain DNS, or
DNS-over-HTTPS) and fetching from the test HTTPS servers, and the recording sink.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from contract.connection_params import ConnectionParamsOutcome
from infra.connparams_servers import (
    Addresses,
    Behaviour,
    Failure,
    Scenario,
    Srv,
    SrvAnswer,
)
from infra.sink import ReceivedEvent
from letro.content_types import (
    CONNECTION_PARAMS,
    CONNECTION_PARAMS_REQUEST,
    MISCONFIGURED_INTERNET_ENDPOINT,
)
from tests.conftest import (
    TEST_RETRY_SECONDS,
    ConnectionParamsServers,
    Deployment,
    Ingress,
    Sink,
    StartIngress,
    StartWorker,
    require,
)
from tests.connparams_servers import (
    CountingListener,
    ipv6_loopback_available,
    start_counting_listener,
)
from tests.helpers import SERVER_ENDPOINT_ID, binary_event_headers, one_shot_outcome
from workflows.connection_params import (
    ConnectionParamsRetrieval,
    workflow_id_for,
)

pytestmark = pytest.mark.integration

REPLY_TIMEOUT = 20.0
# Long enough for the whole retry window, then the reply.
GIVE_UP_TIMEOUT = TEST_RETRY_SECONDS + 15.0


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@dataclass(frozen=True)
class Request:
    """One agent asking for the parameters of ``name`` in one parcel."""

    name: bytes
    sender_id: str
    parcel_id: str

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.sender_id, self.parcel_id)


def new_request(name: str | bytes) -> Request:
    return Request(
        name=name.encode() if isinstance(name, str) else name,
        sender_id="0" + uuid.uuid4().hex * 2,
        parcel_id=str(uuid.uuid4()),
    )


def unique_domain(prefix: str = "endpoint") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}.example"


def serve(servers: ConnectionParamsServers, domain: str, behaviour: Behaviour) -> None:
    servers.dns.set(f"_awala-pdc._tcp.{domain}.", behaviour)


def at(servers: ConnectionParamsServers, scenario: Scenario) -> SrvAnswer:
    return SrvAnswer((Srv(servers.port(scenario)),))


async def send(http: httpx.AsyncClient, to: Deployment | Ingress, request: Request) -> None:
    response = await http.post(
        to.ingress.url if isinstance(to, Deployment) else to.url,
        headers=binary_event_headers(
            sender_id=request.sender_id,
            content_type=CONNECTION_PARAMS_REQUEST,
            parcel_id=request.parcel_id,
        ),
        content=request.name,
    )
    assert response.status_code == 204


async def reply_to(sink: Sink, request: Request, deadline: float = REPLY_TIMEOUT) -> ReceivedEvent:
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(request.sender_id)), deadline)
    [reply] = sink.recorder.to(request.sender_id)
    assert reply.source == SERVER_ENDPOINT_ID
    assert reply.event_type == "tech.relaycorp.awala.endpoint-internet.outgoing-service-message"
    return reply


async def outcome_of(client: Client, request: Request) -> ConnectionParamsOutcome:
    return await one_shot_outcome(client, request.workflow_id, ConnectionParamsOutcome)


def worker_log_lines(deployment: Deployment, workflow_id: str) -> list[dict[str, Any]]:
    lines = []
    for line in deployment.worker.log_file.read_text().splitlines():
        if workflow_id in line and line.startswith("{"):
            lines.append(json.loads(line))
    return lines


@pytest.fixture(params=["dns", "doh"])
def deployment(
    request: pytest.FixtureRequest, dns_deployment: Deployment, doh_deployment: Deployment
) -> Deployment:
    return dns_deployment if request.param == "dns" else doh_deployment


# --- Parameters served ---------------------------------------------------------------------


async def test_parameters_are_sent_back(
    http: httpx.AsyncClient,
    deployment: Deployment,
    connection_params_servers: ConnectionParamsServers,
    sink: Sink,
    temporal_client: Client,
) -> None:
    servers = connection_params_servers
    domain = unique_domain()
    serve(servers, domain, at(servers, Scenario.GOOD))
    request = new_request(domain)

    await send(http, deployment, request)
    reply = await reply_to(sink, request)

    assert reply.content_type == CONNECTION_PARAMS
    assert reply.data == servers.params.der  # as relaynet-core serialised them
    srv_name = f"_awala-pdc._tcp.{domain}."
    assert servers.dns.queries_for(srv_name, deployment.dns_wire) == 1  # the configured transport
    assert servers.dns.queries_for(srv_name) == 1
    outcome = await outcome_of(temporal_client, request)
    assert outcome == ConnectionParamsOutcome(CONNECTION_PARAMS, "served by localhost")
    # The workflow replays its own history: it is deterministic.
    history = await temporal_client.get_workflow_handle(request.workflow_id).fetch_history()
    await Replayer(workflows=[ConnectionParamsRetrieval]).replay_workflow(history)


@pytest.mark.parametrize(
    ("name", "a_label"),
    [
        ("はじめよう.みんな", "xn--p8j9a0d9c9a.xn--q9jyb4c"),
        ("BÜCHER.example.", "xn--bcher-kva.example"),
    ],
    ids=["japanese", "upper case with trailing dot"],
)
async def test_idn_is_looked_up_as_its_a_label(
    http: httpx.AsyncClient,
    dns_deployment: Deployment,
    connection_params_servers: ConnectionParamsServers,
    sink: Sink,
    name: str,
    a_label: str,
) -> None:
    servers = connection_params_servers
    sub = uuid.uuid4().hex[:8]
    serve(servers, f"{sub}.{a_label}", at(servers, Scenario.GOOD))
    request = new_request(f"{sub}.{name}")

    await send(http, dns_deployment, request)
    reply = await reply_to(sink, request)

    assert reply.content_type == CONNECTION_PARAMS
    assert reply.data == servers.params.der
    assert servers.dns.queries_for(f"_awala-pdc._tcp.{sub}.{a_label}.") == 1


async def test_lower_priority_record_is_used_first(
    http: httpx.AsyncClient,
    dns_deployment: Deployment,
    connection_params_servers: ConnectionParamsServers,
    sink: Sink,
) -> None:
    servers = connection_params_servers
    domain = unique_domain()
    # The original took the first answer: the 404 server, listed first.
    serve(
        servers,
        domain,
        SrvAnswer(
            (
                Srv(servers.port(Scenario.NOT_FOUND), priority=20),
                Srv(servers.port(Scenario.GOOD), priority=10),
            )
        ),
    )
    request = new_request(domain)

    await send(http, dns_deployment, request)

    assert (await reply_to(sink, request)).content_type == CONNECTION_PARAMS


async def test_transient_server_errors_are_retried_until_they_pass(
    http: httpx.AsyncClient,
    dns_deployment: Deployment,
    connection_params_servers: ConnectionParamsServers,
    sink: Sink,
) -> None:
    servers = connection_params_servers
    domain = unique_domain()
    serve(servers, domain, at(servers, Scenario.FLAKY))  # 500, 500, then the parameters
    request = new_request(domain)

    await send(http, dns_deployment, request)
    reply = await reply_to(sink, request)

    assert reply.content_type == CONNECTION_PARAMS
    assert reply.data == servers.params.der
    assert servers.https.requests[Scenario.FLAKY] == 3


# --- Misconfigured endpoints ---------------------------------------------------------------


def _misconfigurations(servers: ConnectionParamsServers) -> dict[str, tuple[Behaviour, str]]:
    return {
        "no record (NXDOMAIN)": (Failure.NXDOMAIN, "No such domain"),
        "no SRV record (NODATA)": (SrvAnswer(()), "No usable SRV record"),
        "insecure answer (no AD flag)": (
            SrvAnswer((Srv(servers.port(Scenario.GOOD)),), authenticated=False),
            "not DNSSEC-validated",
        ),
        "SERVFAIL": (Failure.SERVFAIL, "SERVFAIL"),
        "404": (at(servers, Scenario.NOT_FOUND), "HTTP 404"),
        "wrong content type": (at(servers, Scenario.WRONG_CONTENT_TYPE), "content type"),
        "garbage": (at(servers, Scenario.GARBAGE), "invalid connection parameters"),
    }


MISCONFIGURATIONS = [
    "no record (NXDOMAIN)",
    "no SRV record (NODATA)",
    "insecure answer (no AD flag)",
    "SERVFAIL",
    "404",
    "wrong content type",
    "garbage",
]


@pytest.mark.parametrize("case", MISCONFIGURATIONS)
async def test_misconfigured_endpoint_is_reported_with_the_requested_name(
    http: httpx.AsyncClient,
    deployment: Deployment,
    connection_params_servers: ConnectionParamsServers,
    sink: Sink,
    temporal_client: Client,
    case: str,
) -> None:
    servers = connection_params_servers
    behaviour, reason = _misconfigurations(servers)[case]
    domain = unique_domain()
    serve(servers, domain, behaviour)
    request = new_request(domain.upper() + ".")  # echoed as sent, not as looked up

    await send(http, deployment, request)
    reply = await reply_to(sink, request)

    assert reply.content_type == MISCONFIGURED_INTERNET_ENDPOINT
    assert reply.data == request.name
    outcome = await outcome_of(temporal_client, request)
    assert outcome.content_type == MISCONFIGURED_INTERNET_ENDPOINT
    assert reason in outcome.reason
    assert not outcome.gave_up_after_retries
    assert servers.dns.queries_for(f"_awala-pdc._tcp.{domain}.", deployment.dns_wire) == 1


async def test_misconfigured_idn_is_echoed_byte_for_byte(
    http: httpx.AsyncClient,
    dns_deployment: Deployment,
    sink: Sink,
) -> None:
    request = new_request(f"{uuid.uuid4().hex[:8]}.はじめよう.みんな")  # NXDOMAIN

    await send(http, dns_deployment, request)
    reply = await reply_to(sink, request)

    assert reply.content_type == MISCONFIGURED_INTERNET_ENDPOINT
    assert reply.data == request.name


# --- Transient failures, retried for a bounded time ----------------------------------------


async def test_transient_failures_are_retried_then_reported_as_misconfigured(
    http: httpx.AsyncClient,
    dns_deployment: Deployment,
    doh_deployment: Deployment,
    connection_params_servers: ConnectionParamsServers,
    sink: Sink,
    temporal_client: Client,
) -> None:
    """All at once, to wait for the retry window only once."""
    servers = connection_params_servers
    cases: dict[str, tuple[Deployment, Behaviour]] = {
        "resolver unreachable (plain DNS)": (dns_deployment, Failure.SILENCE),
        "resolver unreachable (DoH)": (doh_deployment, Failure.SILENCE),
        "server error": (dns_deployment, at(servers, Scenario.SERVER_ERROR)),
        "hang past the timeout": (dns_deployment, at(servers, Scenario.HANG)),
        "connection refused": (dns_deployment, SrvAnswer((Srv(port=1),))),
    }
    requests = {}
    for case, (deployment, behaviour) in cases.items():
        domain = unique_domain()
        serve(servers, domain, behaviour)
        requests[case] = (deployment, domain, new_request(domain))
    http_before = servers.https.requests.copy()

    await asyncio.gather(*(send(http, d, request) for d, _, request in requests.values()))
    replies = await asyncio.gather(
        *(reply_to(sink, request, GIVE_UP_TIMEOUT) for _, _, request in requests.values())
    )

    for (case, (deployment, domain, request)), reply in zip(requests.items(), replies, strict=True):
        assert reply.content_type == MISCONFIGURED_INTERNET_ENDPOINT, case
        assert reply.data == request.name, case
        outcome = await outcome_of(temporal_client, request)
        assert outcome.gave_up_after_retries, case
        errors = [
            line
            for line in worker_log_lines(deployment, request.workflow_id)
            if line.get("level") == "error"
        ]
        assert [line["event"] for line in errors] == [
            "Gave up retrieving connection params after transient failures"
        ], case
        assert errors[0]["internetAddress"] == domain
    # Each was tried more than once before giving up.
    srv = "_awala-pdc._tcp.{}."
    assert servers.dns.queries_for(srv.format(requests["resolver unreachable (plain DNS)"][1])) > 1
    assert servers.dns.queries_for(srv.format(requests["resolver unreachable (DoH)"][1])) > 1
    for scenario in (Scenario.SERVER_ERROR, Scenario.HANG):
        assert servers.https.requests[scenario] - http_before[scenario] > 1, scenario


async def test_request_accepted_while_no_worker_runs_is_answered_when_one_comes_back(
    http: httpx.AsyncClient,
    start_ingress: StartIngress,
    start_worker: StartWorker,
    connection_params_servers: ConnectionParamsServers,
    sink: Sink,
    temporal_client: Client,
) -> None:
    servers = connection_params_servers
    queue = f"letro-connparams-late-{uuid.uuid4().hex[:6]}"
    ingress = start_ingress(
        TEMPORAL_TASK_QUEUE=queue, CONNECTION_PARAMS_RETRY_SECONDS=str(TEST_RETRY_SECONDS)
    )
    domain = unique_domain()
    serve(servers, domain, at(servers, Scenario.GOOD))
    request = new_request(domain)

    await send(http, ingress, request)  # Temporal has it; no worker polls this queue yet
    await asyncio.sleep(TEST_RETRY_SECONDS + 1)  # longer than the retry window
    assert sink.recorder.to(request.sender_id) == []
    # In a thread, so the test's own servers keep answering while the worker starts.
    worker = await asyncio.to_thread(
        start_worker,
        queue,
        K_SINK=sink.url,
        CONNECTION_PARAMS_RESOLVER=f"dns:127.0.0.1:{servers.dns.port}",
        CONNECTION_PARAMS_CA_FILE=str(servers.ca.ca_file),
        CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES="true",
    )
    try:
        # Our own outage does not count against the endpoint: it is tried, and it answers.
        reply = await reply_to(sink, request)
        assert reply.content_type == CONNECTION_PARAMS
        assert reply.data == servers.params.der
        assert not (await outcome_of(temporal_client, request)).gave_up_after_retries
    finally:
        await asyncio.to_thread(Deployment(ingress, worker).stop)


# --- Redeliveries and malformed requests ---------------------------------------------------


async def test_redelivered_request_is_answered_once(
    http: httpx.AsyncClient,
    dns_deployment: Deployment,
    connection_params_servers: ConnectionParamsServers,
    sink: Sink,
    temporal_client: Client,
) -> None:
    servers = connection_params_servers
    domain = unique_domain()
    serve(servers, domain, at(servers, Scenario.GOOD))
    request = new_request(domain)

    # Twice at once (the second finds the workflow running), then once after it closed.
    await asyncio.gather(send(http, dns_deployment, request), send(http, dns_deployment, request))
    await reply_to(sink, request)
    await outcome_of(temporal_client, request)
    await send(http, dns_deployment, request)
    await asyncio.sleep(1.5)  # room for a duplicate to show up, were there one

    assert len(sink.recorder.to(request.sender_id)) == 1
    assert servers.dns.queries_for(f"_awala-pdc._tcp.{domain}.") == 1
    # The later copy was dropped by the ingress's record of taken parcels.
    log_file = dns_deployment.ingress.process.log_file
    assert log_file is not None
    assert any(
        "Ignored redelivered service message" in line and request.parcel_id in line
        for line in log_file.read_text().splitlines()
    )


MALFORMED_NAMES = {
    "single label": b"malformed",
    "129 bytes": b"a" * 61 + b"." + b"b" * 63 + b".com",
    "not UTF-8": b"caf\xe9.example",
    "underscore": b"a_b.example",
    "IP address": b"127.0.0.1",
    "empty": b"",
}


@pytest.mark.parametrize("name", MALFORMED_NAMES.values(), ids=MALFORMED_NAMES.keys())
async def test_malformed_name_is_dropped_without_reply(
    http: httpx.AsyncClient,
    dns_deployment: Deployment,
    sink: Sink,
    temporal_client: Client,
    name: bytes,
) -> None:
    request = new_request(name)

    await send(http, dns_deployment, request)

    with pytest.raises(RPCError) as error:
        await temporal_client.get_workflow_handle(request.workflow_id).describe()
    assert error.value.status == RPCStatusCode.NOT_FOUND
    ingress_log = dns_deployment.ingress.process.log_file
    assert ingress_log is not None
    refusals = [
        json.loads(line)
        for line in ingress_log.read_text().splitlines()
        if request.parcel_id in line and "Refused malformed connection params request" in line
    ]
    assert len(refusals) == 1
    await asyncio.sleep(0.5)
    assert sink.recorder.to(request.sender_id) == []


# --- Targets at non-public addresses: refused without a connection -------------------------
#
# Only loopback targets here: the machine's tests may connect nowhere else. The other
# ranges are covered by tests/test_awala_target_addresses.py and, at the activity level
# without any socket, by tests/test_connection_params_addresses.py.


@pytest.fixture
async def listener() -> AsyncIterator[CountingListener]:
    """Counts connections on 127.0.0.1 (and ::1 where the machine has it)."""
    counting = CountingListener()
    hosts = ("127.0.0.1", "::1") if ipv6_loopback_available() else ("127.0.0.1",)
    close = await start_counting_listener(counting, hosts)
    yield counting
    close()


LOOPBACK_TARGETS: dict[str, tuple[str | None, Addresses | None, str]] = {
    # (SRV target when it is a literal, else the target name's records; port listened on)
    "SRV target 127.0.0.1.": ("127.0.0.1", None, "127.0.0.1"),
    "name with A 127.0.0.1": (None, Addresses(ipv4=("127.0.0.1",)), "127.0.0.1"),
    "name with AAAA ::1": (None, Addresses(ipv6=("::1",)), "::1"),
    "name with AAAA ::ffff:127.0.0.1": (None, Addresses(ipv6=("::ffff:127.0.0.1",)), "127.0.0.1"),
}


@pytest.mark.parametrize(
    ("literal", "addresses", "listen_on"), LOOPBACK_TARGETS.values(), ids=LOOPBACK_TARGETS.keys()
)
async def test_loopback_target_is_misconfigured_and_never_connected_to(
    http: httpx.AsyncClient,
    public_only_deployment: Deployment,
    connection_params_servers: ConnectionParamsServers,
    sink: Sink,
    temporal_client: Client,
    listener: CountingListener,
    literal: str | None,
    addresses: Addresses | None,
    listen_on: str,
) -> None:
    require(listen_on in listener.ports, "no IPv6 loopback on this machine")
    servers = connection_params_servers
    domain = unique_domain()
    target = literal or f"pdc.{domain}"
    if addresses is not None:
        servers.dns.set(f"{target}.", addresses)
    serve(servers, domain, SrvAnswer((Srv(listener.ports[listen_on], f"{target}."),)))
    request = new_request(domain)

    await send(http, public_only_deployment, request)
    reply = await reply_to(sink, request)

    assert reply.content_type == MISCONFIGURED_INTERNET_ENDPOINT
    assert reply.data == request.name
    outcome = await outcome_of(temporal_client, request)
    assert "is at no public address" in outcome.reason
    assert "loopback" in outcome.reason
    assert not outcome.gave_up_after_retries
    assert listener.total == 0
    refusals = [
        line
        for line in _worker_log(public_only_deployment)
        if line.get("internetAddress") == domain
        and line["event"] == "Refused connection params target at non-public addresses"
    ]
    assert len(refusals) == 1
    assert refusals[0]["endpointHost"] == target
    assert refusals[0]["level"] == "warning"


async def test_loopback_target_is_used_where_private_addresses_are_allowed(
    http: httpx.AsyncClient,
    dns_deployment: Deployment,
    connection_params_servers: ConnectionParamsServers,
    sink: Sink,
) -> None:
    """The control of the test above: the same kind of target, in the tests' deployment."""
    servers = connection_params_servers
    relay = CountingListener(forward_to=servers.port(Scenario.GOOD))
    close = await start_counting_listener(relay)
    try:
        domain = unique_domain()
        # The certificate is valid for 127.0.0.1, so the literal target works end to end.
        serve(servers, domain, SrvAnswer((Srv(relay.ports["127.0.0.1"], "127.0.0.1."),)))
        request = new_request(domain)

        await send(http, dns_deployment, request)
        reply = await reply_to(sink, request)

        assert reply.content_type == CONNECTION_PARAMS
        assert reply.data == servers.params.der
        assert relay.total == 1
    finally:
        close()


def _worker_log(deployment: Deployment) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in deployment.worker.log_file.read_text().splitlines()
        if line.startswith("{")
    ]
