"""Real local servers for connection parameters retrieval: DNS (UDP, TCP, DoH) and HTTPS.

* :class:`DnsServer` answers SRV, A and AAAA queries from a table the tests fill in:
  records with or without the AD flag, NXDOMAIN, SERVFAIL, silence (an unreachable
  resolver) and truncated UDP answers (to force TCP). It speaks plain DNS over UDP and
  TCP, and DNS-over-HTTPS through :func:`create_https_app`.
* :func:`create_https_app` is one Hypercorn app bound to several ports: the port a request
  arrives on picks what ``/connection-params.der`` does (good parameters, wrong content
  type, 404, 500, a hang, garbage...), so SRV records can point at each behaviour.
* :class:`TestCA` issues the server certificate; workers trust it through
  ``CONNECTION_PARAMS_CA_FILE``.
* :class:`CountingListener` accepts TCP connections on loopback and counts them (relaying
  them to a local port, or closing them), to prove that a refused target got none.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import struct
from collections import Counter
from collections.abc import Callable
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
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from quart import Quart, Response, request

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


# --- TCP ----------------------------------------------------------------------------------


@dataclass
class CountingListener:
    """Counts the TCP connections accepted on each loopback address it listens on.

    With ``forward_to``, each connection is relayed to that port of 127.0.0.1 (say, an
    HTTPS server), so a fetch through the listener can succeed; without, it is closed.
    """

    forward_to: int | None = None
    ports: dict[str, int] = field(default_factory=dict)  # by listening address
    accepted: Counter[str] = field(default_factory=Counter)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted[writer.get_extra_info("sockname")[0]] += 1
        try:
            if self.forward_to is not None:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    "127.0.0.1", self.forward_to
                )
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except OSError:
            pass
        finally:
            writer.close()

    @property
    def total(self) -> int:
        return sum(self.accepted.values())


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def start_counting_listener(
    listener: CountingListener, hosts: tuple[str, ...] = ("127.0.0.1",)
) -> Callable[[], None]:
    """Listen on a free port of each of ``hosts`` (loopback only); return a closer."""
    servers = []
    for host in hosts:
        assert ipaddress.ip_address(host).is_loopback, host  # the tests' traffic stays local
        server = await asyncio.start_server(listener._handle, host, 0)
        listener.ports[host] = server.sockets[0].getsockname()[1]
        servers.append(server)

    def close() -> None:
        for server in servers:
            server.close()

    return close


def ipv6_loopback_available() -> bool:
    """Whether this machine can listen on and connect to ::1."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


# --- TLS ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCA:
    ca_file: Path
    cert_file: Path
    key_file: Path


def issue_test_ca(directory: Path) -> TestCA:
    """A CA and a certificate it issued for ``localhost`` and 127.0.0.1, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Letro test CA")])
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
    ca = TestCA(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
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
        assert server is not None
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
        body = await request.get_data(as_text=False)
        assert isinstance(body, bytes)
        reply = dns_server.answer(body, "doh")
        if reply is None:
            await asyncio.sleep(HANG_SECONDS)
            return Response("", 504)
        return Response(reply, 200, content_type="application/dns-message")

    return app
