"""The resolve and fetch activities, called directly, against the real local servers.

Both resolver transports (plain DNS over UDP/TCP, and DNS-over-HTTPS) face the same DNS
answers; the fetch faces each HTTPS behaviour. Timeouts are shortened where a test waits
on silence, except for the 3 s fetch timeout, which is measured.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.connection_params import (
    FETCH_TIMEOUT,
    MISCONFIGURED,
    TRANSIENT,
    ConnectionParamsActivities,
    Resolver,
)
from activities.connection_params_clients import (
    DohClient,
    HttpsParamsFetcher,
    PlainDnsClient,
    make_fetch_client,
    make_http_client,
)
from config import DnsResolver
from contract.connection_params import FetchRequest, ResolveRequest, ServiceTarget
from infra.connparams_servers import Failure, Scenario, Srv, SrvAnswer
from infra.services import free_port
from tests.conftest import ConnectionParamsServers

pytestmark = pytest.mark.integration

SHORT_DNS_TIMEOUT = 0.5


@pytest.fixture
async def http(
    connection_params_servers: ConnectionParamsServers,
) -> AsyncIterator[httpx.AsyncClient]:
    client = make_http_client("1.2.3-test", connection_params_servers.ca.ca_file)
    yield client
    await client.aclose()


def _resolver(
    transport: str, servers: ConnectionParamsServers, http: httpx.AsyncClient
) -> Resolver:
    if transport == "dns":
        return PlainDnsClient(DnsResolver("127.0.0.1", servers.dns.port), timeout=SHORT_DNS_TIMEOUT)
    return DohClient(servers.doh_url, http, timeout=SHORT_DNS_TIMEOUT)


def _wire(transport: str) -> str:
    """What the DNS server saw a transport as: plain DNS is UDP first."""
    return "udp" if transport == "dns" else "doh"


def _domain() -> str:
    return f"endpoint-{uuid.uuid4().hex[:10]}.example"


def _srv_name(domain: str) -> str:
    return f"_awala-pdc._tcp.{domain}."


TRANSPORTS = ["dns", "doh"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_resolution_orders_the_records(
    transport: str, connection_params_servers: ConnectionParamsServers, http: httpx.AsyncClient
) -> None:
    servers = connection_params_servers
    domain = _domain()
    servers.dns.set(
        _srv_name(domain),
        SrvAnswer((Srv(2000, "backup.example.", priority=20), Srv(1000, "Main.Example."))),
    )
    activities = ConnectionParamsActivities(
        _resolver(transport, servers, http), HttpsParamsFetcher(http)
    )

    resolved = await activities.resolve(ResolveRequest(domain))

    assert resolved.targets == [
        ServiceTarget("main.example", 1000),
        ServiceTarget("backup.example", 2000),
    ]
    assert servers.dns.queries_for(_srv_name(domain), _wire(transport)) == 1


MISCONFIGURED_DNS = {
    "no AD flag (insecure)": (SrvAnswer((Srv(443),), authenticated=False), "not DNSSEC"),
    "NXDOMAIN": (Failure.NXDOMAIN, "No such domain"),
    "SERVFAIL": (Failure.SERVFAIL, "SERVFAIL"),
    "REFUSED": (Failure.REFUSED, "REFUSED"),
    "no SRV record (NODATA)": (SrvAnswer(()), "No usable SRV record"),
    "service declared absent": (SrvAnswer((Srv(0, ".", 0, 0),)), "No usable SRV record"),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("behaviour", "reason"), MISCONFIGURED_DNS.values(), ids=MISCONFIGURED_DNS.keys()
)
async def test_misconfigured_dns(
    transport: str,
    behaviour: SrvAnswer | Failure,
    reason: str,
    connection_params_servers: ConnectionParamsServers,
    http: httpx.AsyncClient,
) -> None:
    servers = connection_params_servers
    domain = _domain()
    servers.dns.set(_srv_name(domain), behaviour)
    activities = ConnectionParamsActivities(
        _resolver(transport, servers, http), HttpsParamsFetcher(http)
    )

    with pytest.raises(ApplicationError, match=reason) as error:
        await activities.resolve(ResolveRequest(domain))

    assert error.value.type == MISCONFIGURED
    assert error.value.non_retryable
    assert servers.dns.queries_for(_srv_name(domain), _wire(transport)) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_silent_resolver_is_transient(
    transport: str, connection_params_servers: ConnectionParamsServers, http: httpx.AsyncClient
) -> None:
    servers = connection_params_servers
    domain = _domain()
    servers.dns.set(_srv_name(domain), Failure.SILENCE)
    activities = ConnectionParamsActivities(
        _resolver(transport, servers, http), HttpsParamsFetcher(http)
    )

    with pytest.raises(ApplicationError, match="DNS resolver unreachable") as error:
        await activities.resolve(ResolveRequest(domain))

    assert error.value.type == TRANSIENT
    assert not error.value.non_retryable


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_resolver_not_listening_is_transient(transport: str, http: httpx.AsyncClient) -> None:
    port = free_port()
    resolver: Resolver = (
        PlainDnsClient(DnsResolver("127.0.0.1", port), timeout=SHORT_DNS_TIMEOUT)
        if transport == "dns"
        else DohClient(f"https://localhost:{port}/dns-query", http, timeout=SHORT_DNS_TIMEOUT)
    )
    activities = ConnectionParamsActivities(resolver, HttpsParamsFetcher(http))

    with pytest.raises(ApplicationError, match="DNS resolver unreachable") as error:
        await activities.resolve(ResolveRequest(_domain()))
    assert error.value.type == TRANSIENT


async def test_doh_resolver_error_is_transient(
    connection_params_servers: ConnectionParamsServers, http: httpx.AsyncClient
) -> None:
    url = f"https://localhost:{connection_params_servers.port(Scenario.DOH_BROKEN)}/dns-query"
    activities = ConnectionParamsActivities(DohClient(url, http), HttpsParamsFetcher(http))

    with pytest.raises(ApplicationError, match="HTTP 500") as error:
        await activities.resolve(ResolveRequest(_domain()))
    assert error.value.type == TRANSIENT


async def test_truncated_udp_answer_is_retried_over_tcp(
    connection_params_servers: ConnectionParamsServers, http: httpx.AsyncClient
) -> None:
    servers = connection_params_servers
    domain = _domain()
    servers.dns.set(_srv_name(domain), SrvAnswer((Srv(443),), truncate_over_udp=True))
    activities = ConnectionParamsActivities(
        _resolver("dns", servers, http), HttpsParamsFetcher(http)
    )

    resolved = await activities.resolve(ResolveRequest(domain))

    assert resolved.targets == [ServiceTarget("localhost", 443)]
    assert servers.dns.queries_for(_srv_name(domain), "udp") == 1
    assert servers.dns.queries_for(_srv_name(domain), "tcp") == 1


async def test_equal_priorities_are_drawn_by_weight(
    connection_params_servers: ConnectionParamsServers, http: httpx.AsyncClient
) -> None:
    servers = connection_params_servers
    domain = _domain()
    servers.dns.set(
        _srv_name(domain),
        SrvAnswer((Srv(1, "light.example.", weight=1), Srv(2, "heavy.example.", weight=9))),
    )
    activities = ConnectionParamsActivities(
        _resolver("dns", servers, http), HttpsParamsFetcher(http), rng=random.Random(5)
    )
    firsts = [(await activities.resolve(ResolveRequest(domain))).targets[0].host for _ in range(60)]
    assert 40 <= firsts.count("heavy.example") < 60  # expected 54


# --- Fetch ---------------------------------------------------------------------------------


@pytest.fixture
async def fetch_http(
    connection_params_servers: ConnectionParamsServers,
) -> AsyncIterator[httpx.AsyncClient]:
    client = make_fetch_client("1.2.3-test", connection_params_servers.ca.ca_file)
    yield client
    await client.aclose()


def _fetcher(
    servers: ConnectionParamsServers, http: httpx.AsyncClient, fetch_http: httpx.AsyncClient
) -> ConnectionParamsActivities:
    """The activities as the test deployments run them: the test servers are on loopback."""
    return ConnectionParamsActivities(
        _resolver("dns", servers, http),
        HttpsParamsFetcher(fetch_http),
        allow_private_addresses=True,
    )


def _fetch_request(servers: ConnectionParamsServers, *scenarios: Scenario) -> FetchRequest:
    targets = [ServiceTarget("localhost", servers.port(scenario)) for scenario in scenarios]
    return FetchRequest("example.com", targets)


@pytest.mark.parametrize("scenario", [Scenario.GOOD, Scenario.GOOD_WITH_PARAMETER])
async def test_fetch_good_params(
    scenario: Scenario,
    connection_params_servers: ConnectionParamsServers,
    http: httpx.AsyncClient,
    fetch_http: httpx.AsyncClient,
) -> None:
    servers = connection_params_servers
    activities = _fetcher(servers, http, fetch_http)
    seen = len(servers.https.user_agents)

    fetched = await activities.fetch(_fetch_request(servers, scenario))

    assert fetched.der == servers.params.der
    assert fetched.host == "localhost"
    assert servers.https.user_agents[seen:] == ["Letro-Server/1.2.3-test"]


MISCONFIGURED_HTTPS = {
    "wrong content type": (Scenario.WRONG_CONTENT_TYPE, "content type 'application/octet-stream'"),
    "404": (Scenario.NOT_FOUND, "HTTP 404"),
    "garbage": (Scenario.GARBAGE, "invalid connection parameters"),
}


@pytest.mark.parametrize(
    ("scenario", "reason"), MISCONFIGURED_HTTPS.values(), ids=MISCONFIGURED_HTTPS.keys()
)
async def test_fetch_misconfigured(
    scenario: Scenario,
    reason: str,
    connection_params_servers: ConnectionParamsServers,
    http: httpx.AsyncClient,
    fetch_http: httpx.AsyncClient,
) -> None:
    servers = connection_params_servers
    activities = _fetcher(servers, http, fetch_http)
    with pytest.raises(ApplicationError, match=reason) as error:
        # The next target is good, but a definitive answer from the first one decides.
        await activities.fetch(_fetch_request(servers, scenario, Scenario.GOOD))
    assert error.value.type == MISCONFIGURED
    assert error.value.non_retryable


async def test_fetch_server_error_is_transient(
    connection_params_servers: ConnectionParamsServers,
    http: httpx.AsyncClient,
    fetch_http: httpx.AsyncClient,
) -> None:
    servers = connection_params_servers
    activities = _fetcher(servers, http, fetch_http)
    with pytest.raises(ApplicationError, match="HTTP 500") as error:
        await activities.fetch(_fetch_request(servers, Scenario.SERVER_ERROR))
    assert error.value.type == TRANSIENT
    assert not error.value.non_retryable


async def test_fetch_gives_up_on_a_hanging_server_after_3_seconds(
    connection_params_servers: ConnectionParamsServers,
    http: httpx.AsyncClient,
    fetch_http: httpx.AsyncClient,
) -> None:
    servers = connection_params_servers
    activities = _fetcher(servers, http, fetch_http)
    started = time.monotonic()
    with pytest.raises(ApplicationError, match="TimeoutError") as error:
        await activities.fetch(_fetch_request(servers, Scenario.HANG))
    elapsed = time.monotonic() - started
    assert error.value.type == TRANSIENT
    assert FETCH_TIMEOUT <= elapsed < FETCH_TIMEOUT + 1.5


async def test_unreachable_or_failing_targets_pass_the_turn_to_the_next(
    connection_params_servers: ConnectionParamsServers,
    http: httpx.AsyncClient,
    fetch_http: httpx.AsyncClient,
) -> None:
    servers = connection_params_servers
    activities = _fetcher(servers, http, fetch_http)
    request = FetchRequest(
        "example.com",
        [
            ServiceTarget("localhost", free_port()),  # nothing listening
            ServiceTarget("localhost", servers.port(Scenario.SERVER_ERROR)),
            ServiceTarget("localhost", servers.port(Scenario.GOOD)),
        ],
    )
    fetched = await activities.fetch(request)
    assert fetched.der == servers.params.der


async def test_untrusted_certificate_is_a_connection_error(
    connection_params_servers: ConnectionParamsServers,
) -> None:
    servers = connection_params_servers
    async with make_fetch_client("test", ca_file=None) as untrusting:
        activities = ConnectionParamsActivities(
            _resolver("dns", servers, untrusting),
            HttpsParamsFetcher(untrusting),
            allow_private_addresses=True,
        )
        with pytest.raises(ApplicationError, match="ConnectError") as error:
            await activities.fetch(_fetch_request(servers, Scenario.GOOD))
    assert error.value.type == TRANSIENT
