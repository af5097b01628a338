"""The fetch activity connects only to public addresses it looked up itself.

Safety: tests may only ever open connections to loopback. Where a target is at another
non-public address, the fetch client is an ``httpx.MockTransport`` that records what it
is asked and opens no socket, so even a broken implementation cannot reach that address.
Real connections (certificate checks, the counting listener) go to 127.0.0.1 and ::1 only.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.connection_params import MISCONFIGURED, TRANSIENT, ConnectionParamsActivities
from activities.connection_params_clients import (
    HttpsParamsFetcher,
    PlainDnsClient,
    make_fetch_client,
)
from config import DnsResolver
from contract.connection_params import FetchRequest, ServiceTarget
from infra.connparams_servers import PARAMS_CONTENT_TYPE, Addresses, Failure, Scenario
from tests.conftest import ConnectionParamsServers, require
from tests.connparams_servers import (
    CountingListener,
    ipv6_loopback_available,
    start_counting_listener,
)

pytestmark = pytest.mark.integration

PORT = 8443  # of targets reached only through the mock transport


class RecordingTransport(httpx.MockTransport):
    """Opens no socket: records each request and answers with ``respond``."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond or _must_not_be_called
        super().__init__(self._record)

    def _record(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)


def _must_not_be_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the fetch tried to connect to {request.url}")


def _activities(
    servers: ConnectionParamsServers, client: httpx.AsyncClient, *, allow_private: bool = False
) -> ConnectionParamsActivities:
    resolver = PlainDnsClient(DnsResolver("127.0.0.1", servers.dns.port), timeout=1)
    return ConnectionParamsActivities(
        resolver, HttpsParamsFetcher(client), allow_private_addresses=allow_private
    )


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}.example"


def _fetch(*targets: ServiceTarget) -> FetchRequest:
    return FetchRequest("endpoint.example", list(targets))


# --- Non-public targets: refused before any request ----------------------------------------

IP_LITERALS = [
    "127.0.0.1",
    "127.0.0.53",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",
    "192.0.2.10",
    "::1",
    "::",
    "fd00:ec2::254",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::127.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "2002:c0a8:101::1",
]


@pytest.mark.parametrize("literal", IP_LITERALS)
async def test_ip_literal_target_at_a_non_public_address_is_refused(
    literal: str, connection_params_servers: ConnectionParamsServers
) -> None:
    transport = RecordingTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        activities = _activities(connection_params_servers, client)
        with pytest.raises(ApplicationError, match="is at no public address") as error:
            await activities.fetch(_fetch(ServiceTarget(literal, PORT)))
    assert error.value.type == MISCONFIGURED
    assert error.value.non_retryable
    assert transport.requests == []


NAMES: dict[str, Addresses] = {
    "A 127.0.0.1": Addresses(ipv4=("127.0.0.1",)),
    "AAAA ::1": Addresses(ipv6=("::1",)),
    "A 10.0.0.1": Addresses(ipv4=("10.0.0.1",)),
    "A 172.20.0.3 and 192.168.0.7": Addresses(ipv4=("172.20.0.3", "192.168.0.7")),
    "A 100.100.100.200 (Alibaba metadata)": Addresses(ipv4=("100.100.100.200",)),
    "A 169.254.169.254": Addresses(ipv4=("169.254.169.254",)),
    "AAAA fd00:ec2::254": Addresses(ipv6=("fd00:ec2::254",)),
    "AAAA fe80::1 and A 169.254.1.1": Addresses(ipv4=("169.254.1.1",), ipv6=("fe80::1",)),
    "AAAA ::ffff:127.0.0.1": Addresses(ipv6=("::ffff:127.0.0.1",)),
    "AAAA ::ffff:169.254.169.254": Addresses(ipv6=("::ffff:169.254.169.254",)),
    "AAAA 64:ff9b::10.1.2.3 (NAT64)": Addresses(ipv6=("64:ff9b::a01:203",)),
}


@pytest.mark.parametrize("addresses", NAMES.values(), ids=NAMES.keys())
async def test_name_resolving_to_non_public_addresses_is_refused(
    addresses: Addresses, connection_params_servers: ConnectionParamsServers
) -> None:
    servers = connection_params_servers
    name = _name("internal")
    servers.dns.set(f"{name}.", addresses)
    transport = RecordingTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        activities = _activities(servers, client)
        with pytest.raises(ApplicationError, match="is at no public address") as error:
            # The next target would be fine, but this answer is definitive.
            await activities.fetch(
                _fetch(ServiceTarget(name, PORT), ServiceTarget("1.1.1.1", PORT))
            )
    assert error.value.type == MISCONFIGURED
    for address in (*addresses.ipv4, *addresses.ipv6):
        assert address.split(":")[-1] in error.value.message  # each refusal is explained
    assert transport.requests == []
    # Looked up through the configured resolver, once per family.
    assert servers.dns.queries_of_type(f"{name}.", "A") == 1
    assert servers.dns.queries_of_type(f"{name}.", "AAAA") == 1


async def test_metadata_google_internal_is_looked_up_with_our_resolver_and_refused(
    connection_params_servers: ConnectionParamsServers,
) -> None:
    servers = connection_params_servers
    servers.dns.set("metadata.google.internal.", Addresses(ipv4=("169.254.169.254",)))
    transport = RecordingTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        # Even with private addresses allowed, a metadata service is not a PoHTTP server.
        activities = _activities(servers, client, allow_private=True)
        with pytest.raises(ApplicationError, match="cloud metadata service") as error:
            await activities.fetch(_fetch(ServiceTarget("metadata.google.internal", 80)))
    assert error.value.type == MISCONFIGURED
    assert transport.requests == []
    assert servers.dns.queries_of_type("metadata.google.internal.", "A") == 1


@pytest.mark.parametrize("host", ["a b.example", "evil.example/x?", "127.1", "fe80::1%lo"])
async def test_target_that_is_not_a_host_is_misconfigured(
    host: str, connection_params_servers: ConnectionParamsServers
) -> None:
    transport = RecordingTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        activities = _activities(connection_params_servers, client, allow_private=True)
        with pytest.raises(ApplicationError, match=r"SRV target .* (is not|has)") as error:
            await activities.fetch(_fetch(ServiceTarget(host, PORT)))
    assert error.value.type == MISCONFIGURED
    assert transport.requests == []


# --- Public targets: fetched from the address that was checked ------------------------------


def _serve_params(params: bytes) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=params, headers={"content-type": PARAMS_CONTENT_TYPE})

    return respond


async def test_public_name_is_fetched_from_its_checked_address_with_its_name_for_tls(
    connection_params_servers: ConnectionParamsServers,
) -> None:
    servers = connection_params_servers
    name = _name("public")
    # A private address next to a public one is skipped; the public one is used.
    servers.dns.set(f"{name}.", Addresses(ipv4=("10.0.0.1", "1.1.1.1")))
    transport = RecordingTransport(_serve_params(servers.params.der))
    async with httpx.AsyncClient(transport=transport) as client:
        fetched = await _activities(servers, client).fetch(_fetch(ServiceTarget(name, PORT)))

    assert fetched.der == servers.params.der
    [request] = transport.requests
    assert (request.url.host, request.url.port, request.url.path) == (
        "1.1.1.1",
        PORT,
        "/connection-params.der",
    )
    assert request.headers["host"] == f"{name}:{PORT}"
    assert request.extensions["sni_hostname"] == name
    # One answer per family, used as it was checked: nothing left to rebind.
    assert servers.dns.queries_of_type(f"{name}.", "A") == 1
    assert servers.dns.queries_of_type(f"{name}.", "AAAA") == 1


async def test_addresses_are_tried_in_turn_ipv4_first(
    connection_params_servers: ConnectionParamsServers,
) -> None:
    servers = connection_params_servers
    name = _name("dual-stack")
    servers.dns.set(
        f"{name}.", Addresses(ipv4=("1.1.1.1",), ipv6=("2606:4700:4700::1111", "fd00::1"))
    )

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.host == "1.1.1.1":
            raise httpx.ConnectError("unreachable", request=request)
        return _serve_params(servers.params.der)(request)

    transport = RecordingTransport(respond)
    async with httpx.AsyncClient(transport=transport) as client:
        fetched = await _activities(servers, client).fetch(_fetch(ServiceTarget(name, 443)))

    assert fetched.host == name
    assert [request.url.host for request in transport.requests] == [
        "1.1.1.1",
        "2606:4700:4700::1111",
    ]
    # The default port is left out of the Host header, as a client does for a URL.
    assert {request.headers["host"] for request in transport.requests} == {name}


async def test_public_ip_literal_is_fetched_as_it_is(
    connection_params_servers: ConnectionParamsServers,
) -> None:
    servers = connection_params_servers
    transport = RecordingTransport(_serve_params(servers.params.der))
    async with httpx.AsyncClient(transport=transport) as client:
        await _activities(servers, client).fetch(_fetch(ServiceTarget("8.8.8.8", PORT)))
    [request] = transport.requests
    assert request.url.host == "8.8.8.8"
    assert request.headers["host"] == f"8.8.8.8:{PORT}"
    assert "sni_hostname" not in request.extensions  # the certificate must be for the address


async def test_name_without_addresses_passes_the_turn(
    connection_params_servers: ConnectionParamsServers,
) -> None:
    servers = connection_params_servers
    missing, empty = _name("missing"), _name("empty")
    servers.dns.set(f"{empty}.", Addresses())  # NODATA for both families
    transport = RecordingTransport(_serve_params(servers.params.der))
    async with httpx.AsyncClient(transport=transport) as client:
        activities = _activities(servers, client)
        with pytest.raises(ApplicationError, match="No PoHTTP server answered") as error:
            await activities.fetch(_fetch(ServiceTarget(missing, PORT), ServiceTarget(empty, 1)))
        assert error.value.type == TRANSIENT
        assert "TargetUnresolvable" in error.value.message
        fetched = await activities.fetch(
            _fetch(ServiceTarget(missing, PORT), ServiceTarget("1.1.1.1", PORT))
        )
    assert fetched.host == "1.1.1.1"
    assert [request.url.host for request in transport.requests] == ["1.1.1.1"]


async def test_resolver_failing_for_the_target_is_transient(
    connection_params_servers: ConnectionParamsServers,
) -> None:
    servers = connection_params_servers
    name = _name("silent")
    servers.dns.set(f"{name}.", Failure.SILENCE)
    transport = RecordingTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(ApplicationError, match="ResolverUnreachable") as error:
            await _activities(servers, client).fetch(_fetch(ServiceTarget(name, PORT)))
    assert error.value.type == TRANSIENT
    assert transport.requests == []


# --- Real connections, to loopback only -----------------------------------------------------


@pytest.fixture
async def fetch_http(
    connection_params_servers: ConnectionParamsServers,
) -> AsyncIterator[httpx.AsyncClient]:
    client = make_fetch_client("test", connection_params_servers.ca.ca_file)
    yield client
    await client.aclose()


async def test_certificate_is_checked_against_the_target_name(
    connection_params_servers: ConnectionParamsServers, fetch_http: httpx.AsyncClient
) -> None:
    """The certificate is for ``localhost`` and 127.0.0.1: another name at 127.0.0.1 fails.

    Even right after a good fetch from the same address with the same client, which would
    pass were the earlier connection reused (pooled by address, not by server name).
    """
    servers = connection_params_servers
    activities = _activities(servers, fetch_http, allow_private=True)
    good = servers.port(Scenario.GOOD)
    seen = len(servers.https.hosts)
    fetched = await activities.fetch(_fetch(ServiceTarget("localhost", good)))
    assert fetched.der == servers.params.der
    assert servers.https.hosts[seen:] == [f"localhost:{good}"]

    impostor = _name("impostor")
    servers.dns.set(f"{impostor}.", Addresses(ipv4=("127.0.0.1",)))
    requests_before = servers.https.requests[Scenario.GOOD]
    with pytest.raises(ApplicationError, match="ConnectError") as error:
        await activities.fetch(_fetch(ServiceTarget(impostor, good)))
    assert error.value.type == TRANSIENT
    assert servers.https.requests[Scenario.GOOD] == requests_before


async def test_ip_literal_target_is_checked_against_the_address(
    connection_params_servers: ConnectionParamsServers, fetch_http: httpx.AsyncClient
) -> None:
    servers = connection_params_servers
    activities = _activities(servers, fetch_http, allow_private=True)
    fetched = await activities.fetch(
        _fetch(ServiceTarget("127.0.0.1", servers.port(Scenario.GOOD)))
    )
    assert fetched.der == servers.params.der


async def test_redirect_is_not_followed(
    connection_params_servers: ConnectionParamsServers, fetch_http: httpx.AsyncClient
) -> None:
    servers = connection_params_servers
    activities = _activities(servers, fetch_http, allow_private=True)
    good_before = servers.https.requests[Scenario.GOOD]
    with pytest.raises(ApplicationError, match="answered HTTP 302") as error:
        await activities.fetch(_fetch(ServiceTarget("localhost", servers.port(Scenario.REDIRECT))))
    assert error.value.type == MISCONFIGURED
    assert servers.https.requests[Scenario.GOOD] == good_before


LOOPBACK_TARGETS = {
    "IPv4 literal": ("127.0.0.1", None, "127.0.0.1"),
    "IPv4-mapped literal": ("::ffff:127.0.0.1", None, "127.0.0.1"),
    "name with A 127.0.0.1": (None, Addresses(ipv4=("127.0.0.1",)), "127.0.0.1"),
    "name with AAAA ::ffff:127.0.0.1": (
        None,
        Addresses(ipv6=("::ffff:127.0.0.1",)),
        "127.0.0.1",
    ),
    "IPv6 literal": ("::1", None, "::1"),
    "name with AAAA ::1": (None, Addresses(ipv6=("::1",)), "::1"),
}


@pytest.mark.parametrize(
    ("literal", "addresses", "listen_on"), LOOPBACK_TARGETS.values(), ids=LOOPBACK_TARGETS.keys()
)
async def test_loopback_target_gets_no_connection_unless_allowed(
    literal: str | None,
    addresses: Addresses | None,
    listen_on: str,
    connection_params_servers: ConnectionParamsServers,
    fetch_http: httpx.AsyncClient,
) -> None:
    # A machine without IPv6 loopback skips these locally; on CI that is a failure.
    require(":" not in listen_on or ipv6_loopback_available(), "no IPv6 loopback on this machine")
    servers = connection_params_servers
    listener = CountingListener()
    close = await start_counting_listener(listener, (listen_on,))
    try:
        host = literal or _name("loopback")
        if addresses is not None:
            servers.dns.set(f"{host}.", addresses)
        target = ServiceTarget(host, listener.ports[listen_on])

        with pytest.raises(ApplicationError, match="is at no public address") as error:
            await _activities(servers, fetch_http).fetch(_fetch(target))
        assert error.value.type == MISCONFIGURED
        assert listener.total == 0

        # The control: allowed, the same target is connected to (the listener closes it).
        with pytest.raises(ApplicationError) as allowed_error:
            await _activities(servers, fetch_http, allow_private=True).fetch(_fetch(target))
        assert allowed_error.value.type == TRANSIENT
        assert listener.accepted[listen_on] == 1
    finally:
        close()
