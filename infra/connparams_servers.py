"""Real local servers for connection parameters retrieval: DNS (UDP, TCP, DoH) and HTTPS.

The tests and the benchmarks point a worker at these instead of the Internet:

* :class:`DnsServer` answers SRV, A and AAAA queries from a table the caller fills in:
  records with or without the AD flag, NXDOMAIN, SERVFAIL, silence (an unreachable
  resolver) and truncated UDP answers (to force TCP). It speaks plain DNS over UDP and
  TCP, and DNS-over-HTTPS through :func:`create_https_app`.
* :func:`create_https_app` is one Hypercorn app bound to several ports: the port a request
  arrives on picks what ``/connection-params.der`` does (good parameters, wrong content
  type, 404, 500, a hang, garbage...), so SRV records can point at each behaviour.
* :class:`LocalCA` issues the server certificate; workers trust it through
  ``CONNECTION_PARAMS_CA_FILE``.
* :func:`serve_connection_params_servers` runs all of them in the caller's event loop.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import secrets
import struct
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, Response, request

from awala.connection_params import (
    NodeConnectionParams,
    SessionKey,
    serialise_node_connection_params,
)
from infra.services import LOOPBACK, free_port

# --- DNS ----------------------------------------------------------------------------------


class Failure(Enum):
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    SILENCE = "silence"  # no answer at all: the resolver looks unreachable


@dataclass(frozen=True)
class Srv:
    port: int
    target: str = "localhost."
    priority: int = 10
    weight: int = 10


@dataclass(frozen=True)
class SrvAnswer:
    records: tuple[Srv, ...]
    authenticated: bool = True  # the AD flag of a validating resolver
    truncate_over_udp: bool = False


@dataclass(frozen=True)
class Addresses:
    """A host's A and AAAA records (its name has no SRV record)."""

    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()


Behaviour = SrvAnswer | Addresses | Failure


@dataclass
class DnsServer:
    """Answers SRV queries for the names in ``zone``; any other name is NXDOMAIN."""

    zone: dict[str, Behaviour] = field(default_factory=dict)
    queries: Counter[tuple[str, str]] = field(default_factory=Counter)  # (name, transport)
    queries_by_type: Counter[tuple[str, str]] = field(default_factory=Counter)  # (name, type)
    port: int = 0

    def set(self, name: str, behaviour: Behaviour) -> None:
        self.zone[dns.name.from_text(name).to_text().lower()] = behaviour

    def answer(self, wire: bytes, transport: str) -> bytes | None:
        """The response to the query in ``wire``, or None to stay silent."""
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text().lower()
        self.queries[(name, transport)] += 1
        self.queries_by_type[(name, dns.rdatatype.to_text(question.rdtype))] += 1
        behaviour = self.zone.get(name, Failure.NXDOMAIN)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if behaviour is Failure.SILENCE:
            return None
        if isinstance(behaviour, Failure):
            rcode = {
                Failure.NXDOMAIN: dns.rcode.NXDOMAIN,
                Failure.SERVFAIL: dns.rcode.SERVFAIL,
                Failure.REFUSED: dns.rcode.REFUSED,
            }[behaviour]
            response.set_rcode(rcode)
            if rcode == dns.rcode.NXDOMAIN:
                response.flags |= dns.flags.AD  # a validated denial of existence
            return response.to_wire()
        if isinstance(behaviour, Addresses):
            _add_addresses(response, question, behaviour)
            return response.to_wire(want_shuffle=False)
        if behaviour.authenticated:
            response.flags |= dns.flags.AD
        if behaviour.truncate_over_udp and transport == "udp":
            response.flags |= dns.flags.TC
            return response.to_wire()
        if question.rdtype == dns.rdatatype.SRV and behaviour.records:
            rrset = dns.rrset.from_text(
                question.name,
                300,
                dns.rdataclass.IN,
                dns.rdatatype.SRV,
                *(f"{r.priority} {r.weight} {r.port} {r.target}" for r in behaviour.records),
            )
            response.answer.append(rrset)
        # In the order given, unshuffled: tests rely on which record comes first.
        return response.to_wire(want_shuffle=False)

    def queries_of_type(self, name: str, rdtype: str) -> int:
        return self.queries_by_type[(dns.name.from_text(name).to_text().lower(), rdtype)]

    def queries_for(self, name: str, transport: str | None = None) -> int:
        key = dns.name.from_text(name).to_text().lower()
        return sum(
            count
            for (queried, used), count in self.queries.items()
            if queried == key and transport in (None, used)
        )


def _add_addresses(
    response: dns.message.Message, question: dns.rrset.RRset, addresses: Addresses
) -> None:
    records = {dns.rdatatype.A: addresses.ipv4, dns.rdatatype.AAAA: addresses.ipv6}.get(
        question.rdtype, ()
    )
    if records:  # else NODATA: the name exists, without records of that type
        response.answer.append(
            dns.rrset.from_text(question.name, 300, dns.rdataclass.IN, question.rdtype, *records)
        )


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        reply = self._server.answer(data, "udp")
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)


async def start_dns_server(server: DnsServer) -> Callable[[], None]:
    """Serve ``server`` on UDP and TCP 127.0.0.1, on the same free port; return a closer."""
    loop = asyncio.get_running_loop()

    async def handle_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = server.answer(await reader.readexactly(length), "tcp")
                if reply is None:
                    continue
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    tcp = await asyncio.start_server(handle_tcp, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    udp, _ = await loop.create_datagram_endpoint(
        lambda: _UdpProtocol(server), local_addr=("127.0.0.1", port)
    )
    server.port = port

    def close() -> None:
        udp.close()
        tcp.close()

    return close


# --- TLS ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalCA:
    ca_file: Path
    cert_file: Path
    key_file: Path


def issue_local_ca(directory: Path) -> LocalCA:
    """A CA and a certificate it issued for ``localhost`` and 127.0.0.1, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Letro local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca = LocalCA(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ca.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca


# --- HTTPS --------------------------------------------------------------------------------


class Scenario(Enum):
    GOOD = "good"
    GOOD_WITH_PARAMETER = "good, content type with a parameter"
    WRONG_CONTENT_TYPE = "wrong content type"
    NOT_FOUND = "404"
    SERVER_ERROR = "500"
    FLAKY = "500 twice, then good"
    HANG = "hang"
    GARBAGE = "garbage"
    REDIRECT = "302 to the good server"
    DOH = "DNS-over-HTTPS endpoint"
    DOH_BROKEN = "DNS-over-HTTPS endpoint answering 500"


PARAMS_CONTENT_TYPE = "application/vnd.etsi.tsl.der"
# Past the fetch's 3 s timeout, but bounded, so no request is left hanging at shutdown.
HANG_SECONDS = 5.0


@dataclass
class HttpsRecorder:
    ports: dict[Scenario, int]
    requests: Counter[Scenario] = field(default_factory=Counter)
    user_agents: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # the Host header of each request

    def scenario_of_request(self) -> Scenario:
        """The scenario of the port the current request arrived on."""
        server = request.scope["server"]
        if server is None:
            raise LookupError("The request came on no known socket")
        return next(scenario for scenario, bound in self.ports.items() if bound == server[1])


def create_https_app(recorder: HttpsRecorder, dns_server: DnsServer, params_der: bytes) -> Quart:
    app = Quart(__name__)

    @app.route("/connection-params.der")
    async def connection_params() -> Response:
        scenario = recorder.scenario_of_request()
        recorder.requests[scenario] += 1
        recorder.user_agents.append(request.headers.get("user-agent", ""))
        recorder.hosts.append(request.headers.get("host", ""))
        match scenario:
            case Scenario.GOOD:
                return Response(params_der, 200, content_type=PARAMS_CONTENT_TYPE)
            case Scenario.GOOD_WITH_PARAMETER:
                return Response(params_der, 200, content_type="Application/Vnd.Etsi.Tsl.Der; x=y")
            case Scenario.WRONG_CONTENT_TYPE:
                return Response(params_der, 200, content_type="application/octet-stream")
            case Scenario.NOT_FOUND:
                return Response("Not found", 404)
            case Scenario.SERVER_ERROR:
                return Response("Oops", 500)
            case Scenario.FLAKY:
                if recorder.requests[scenario] <= 2:
                    return Response("Try again", 500)
                return Response(params_der, 200, content_type=PARAMS_CONTENT_TYPE)
            case Scenario.HANG:
                await asyncio.sleep(HANG_SECONDS)
                return Response(params_der, 200, content_type=PARAMS_CONTENT_TYPE)
            case Scenario.GARBAGE:
                return Response(b"\x30\x03garbage", 200, content_type=PARAMS_CONTENT_TYPE)
            case Scenario.REDIRECT:
                good = recorder.ports[Scenario.GOOD]
                location = f"https://localhost:{good}/connection-params.der"
                return Response("", 302, headers={"location": location})
            case _:
                return Response("", 404)

    @app.route("/dns-query", methods=["POST"])
    async def dns_query() -> Response:
        scenario = recorder.scenario_of_request()
        recorder.requests[scenario] += 1
        if scenario is not Scenario.DOH:
            return Response("Resolver broken", 500)
        body: bytes = await request.get_data(as_text=False)  # type: ignore[assignment]
        reply = dns_server.answer(body, "doh")
        if reply is None:
            await asyncio.sleep(HANG_SECONDS)
            return Response("", 504)
        return Response(reply, 200, content_type="application/dns-message")

    return app


# --- All of them ------------------------------------------------------------------------------

_READY_TIMEOUT = 10.0


@dataclass
class LocalConnectionParamsServers:
    """The DNS server, the HTTPS servers (one port per scenario) and their CA."""

    dns: DnsServer
    https: HttpsRecorder
    ca: LocalCA

    def port(self, scenario: Scenario) -> int:
        return self.https.ports[scenario]

    @property
    def doh_url(self) -> str:
        return f"https://localhost:{self.port(Scenario.DOH)}/dns-query"

    @property
    def plain_dns_resolver(self) -> str:
        """``CONNECTION_PARAMS_RESOLVER`` for a worker resolving through this DNS server."""
        return f"dns:{LOOPBACK}:{self.dns.port}"


@asynccontextmanager
async def serve_connection_params_servers(
    directory: Path, params_der: bytes
) -> AsyncIterator[LocalConnectionParamsServers]:
    """Every server on loopback, in this event loop, until the context ends.

    The good scenarios serve ``params_der``; the CA's files are written to ``directory``.
    """
    ca = issue_local_ca(directory)
    dns_server = DnsServer()
    # The HTTPS servers' name: workers look it up through this server, not the system's.
    dns_server.set("localhost.", Addresses(ipv4=(LOOPBACK,)))
    close_dns = await start_dns_server(dns_server)
    recorder = HttpsRecorder(ports={scenario: free_port() for scenario in Scenario})
    stop = asyncio.Event()
    app = create_https_app(recorder, dns_server, params_der)
    task = asyncio.create_task(serve(app, _https_config(ca, recorder), shutdown_trigger=stop.wait))
    try:
        await _wait_for_ports(recorder.ports.values())
        yield LocalConnectionParamsServers(dns_server, recorder, ca)
    finally:
        stop.set()
        await task
        close_dns()


def _https_config(ca: LocalCA, recorder: HttpsRecorder) -> Config:
    config = Config()
    config.bind = [f"{LOOPBACK}:{port}" for port in recorder.ports.values()]
    config.certfile = str(ca.cert_file)
    config.keyfile = str(ca.key_file)
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1
    # Idle keep-alive connections from the workers close soon, so none is left at shutdown.
    config.keep_alive_timeout = 1
    return config


async def _wait_for_ports(ports: Iterable[int]) -> None:
    async with asyncio.timeout(_READY_TIMEOUT):
        for port in ports:
            while True:
                try:
                    _, writer = await asyncio.open_connection(LOOPBACK, port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break


def make_node_connection_params(internet_address: str) -> bytes:
    """``NodeConnectionParams`` DER for ``internet_address``, with fresh keys.

    The tests serve parameters serialised by relaynet-core instead (they need Node); these
    are made with our own serialiser, for what needs no independent check.
    """
    identity_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    session_key = ec.generate_private_key(ec.SECP256R1())
    params = NodeConnectionParams(
        internet_address=internet_address,
        identity_key=_spki(identity_key),
        session_key=SessionKey(key_id=secrets.token_bytes(8), public_key=_spki(session_key)),
    )
    return serialise_node_connection_params(params)


def _spki(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
