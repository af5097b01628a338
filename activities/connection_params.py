"""Finding an Awala Internet endpoint and fetching its connection parameters: the activities.

Two activities, each deciding between three outcomes:

* a result;
* a definitive "misconfigured endpoint": a non-retryable ``ApplicationError`` of type
  :data:`MISCONFIGURED`, whose message says why (no SRV record, an answer without the AD
  flag, a DNS error code, a target at a non-public address, an HTTP 4xx, a wrong content
  type, parameters that do not parse);
* a transient failure (resolver unreachable, target without addresses, connection error,
  timeout, HTTP 5xx): any other exception, which the workflow's retry policy retries for
  a bounded time.

The fetch never lets the system resolve a target: it looks up the target's A and AAAA
records through the configured resolver, keeps the addresses ``awala.target_addresses``
allows, and connects to those addresses themselves, with the target's name as TLS server
name (SNI and certificate check) and ``Host`` header. What was checked is what is
connected to, so a second, different DNS answer cannot steer the connection elsewhere.

The activities make every decision; the I/O is behind two ports, :class:`Resolver` (a DNS
query in, its response out) and :class:`ParamsFetcher` (one ``GET`` from one address),
implemented in ``activities.connection_params_clients``, which report failures with the
exception types below.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import random
from dataclasses import dataclass
from typing import Final, Protocol

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import structlog
from structlog.stdlib import BoundLogger
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from awala.connection_params import CONNECTION_PARAMS_CONTENT_TYPE, parse_node_connection_params
from awala.errors import InvalidConnectionParams, InvalidTargetHost
from awala.internet_address import SrvRecord, order_srv_records, pdc_srv_name
from awala.target_addresses import IPAddress, parse_target_host, screen_addresses
from contract.connection_params import (
    FetchedParams,
    FetchRequest,
    ResolvedEndpoint,
    ResolveRequest,
    ServiceTarget,
)

logger = structlog.get_logger(__name__)

MISCONFIGURED: Final = "MisconfiguredInternetEndpoint"
TRANSIENT: Final = "TransientRetrievalFailure"

# As the original server: each fetch of the parameters gets 3 s in all (here including the
# look-up of the target's addresses).
FETCH_TIMEOUT: Final = 3.0
# Targets tried per attempt, so an attempt fits its start-to-close timeout.
MAX_TARGETS_PER_ATTEMPT: Final = 3
# Real parameters are well under 2 KiB (an RSA and an EC public key); refuse anything huge.
MAX_PARAMS_SIZE: Final = 64 * 1024
# What EDNS(0) payload size to advertise: the DNS flag day 2020 value, avoiding fragmentation.
_EDNS_PAYLOAD: Final = 1232
PARAMS_PATH: Final = "/connection-params.der"


def misconfigured(reason: str) -> ApplicationError:
    # BENIGN: an expected outcome, so the SDK does not log it as an activity failure.
    return ApplicationError(
        reason, type=MISCONFIGURED, non_retryable=True, category=ApplicationErrorCategory.BENIGN
    )


def transient(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=TRANSIENT)


class ResolverUnreachable(Exception):
    """The resolver did not answer, or answered something that is not a DNS response."""


class TargetUnresolvable(Exception):
    """A target's name has no A or AAAA record: like an unreachable server, try the next."""


class ServerUnreachable(Exception):
    """A PoHTTP server could not be connected to (TCP, TLS), or its answer not read."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind  # what the HTTP library called it: ConnectError, ReadTimeout...


class Resolver(Protocol):
    async def query(self, query: dns.message.Message) -> dns.message.QueryMessage:
        """Raises: ResolverUnreachable."""


@dataclass(frozen=True)
class ParamsResponse:
    status: int
    content_type: str
    body: bytes | None  # None: over the size limit; empty unless the status is 2xx


class ParamsFetcher(Protocol):
    async def get(
        self, address: IPAddress, port: int, server_name: str | None, *, max_size: int
    ) -> ParamsResponse:
        """``GET`` :data:`PARAMS_PATH` from ``address`` itself, reading up to ``max_size``.

        ``server_name``, if any, is the name the TLS certificate must be valid for, and
        the ``Host``; without one, the certificate must be valid for the address.

        Raises:
            ServerUnreachable: if the server cannot be reached or its answer not read.
        """


class ConnectionParamsActivities:
    """The activities of connection parameters retrieval; one instance per worker."""

    def __init__(
        self,
        resolver: Resolver,
        fetcher: ParamsFetcher,
        *,
        allow_private_addresses: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        """``allow_private_addresses`` lets targets be at loopback, private and other
        internal addresses: for local development and tests, never in production.
        """
        self._resolver = resolver
        self._fetcher = fetcher
        self._allow_private = allow_private_addresses
        self._rng = rng or random.SystemRandom()

    @activity.defn(name="resolve_awala_endpoint")
    async def resolve(self, request: ResolveRequest) -> ResolvedEndpoint:
        name = pdc_srv_name(request.ascii_domain_name)
        log = logger.bind(internetAddress=request.ascii_domain_name)
        query = dns.message.make_query(
            name, dns.rdatatype.SRV, want_dnssec=True, payload=_EDNS_PAYLOAD
        )
        # Ask for the AD bit (RFC 6840 §5.7): a validating resolver sets it only when the
        # whole chain of the answer validated.
        query.flags |= dns.flags.AD
        try:
            response = await self._resolver.query(query)
        except ResolverUnreachable as error:
            log.warning("Failed to use DNS resolver", err=str(error))
            raise transient(f"DNS resolver unreachable: {error}") from error

        rcode = response.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            log.info("Awala endpoint record not found")
            raise misconfigured(f"No such domain: {name}")
        if rcode != dns.rcode.NOERROR:
            log.info("Invalid Awala DNS configuration", rcode=dns.rcode.to_text(rcode))
            raise misconfigured(f"DNS lookup of {name} failed with {dns.rcode.to_text(rcode)}")
        if not response.flags & dns.flags.AD:
            log.info("Invalid Awala DNS configuration", err="answer not DNSSEC-validated")
            raise misconfigured(f"The answer for {name} is not DNSSEC-validated (no AD flag)")
        answer = response.resolve_chaining().answer  # follows CNAMEs, if any
        records = [
            SrvRecord(
                priority=rdata.priority,
                weight=rdata.weight,
                port=rdata.port,
                # The root name (".") says the service is not available: SrvRecord's "".
                target=rdata.target.to_text(omit_final_dot=True).lower().removesuffix("."),
            )
            for rdata in (answer or [])
            if isinstance(rdata, dns.rdtypes.IN.SRV.SRV)
        ]
        ordered = order_srv_records(records, self._rng)
        if not ordered:
            log.info("Awala endpoint record not found")
            raise misconfigured(f"No usable SRV record at {name}")
        targets = [ServiceTarget(record.target, record.port) for record in ordered]
        log.debug("Awala endpoint record found", endpointHost=targets[0].host, targets=len(targets))
        return ResolvedEndpoint(targets)

    @activity.defn(name="fetch_connection_params")
    async def fetch(self, request: FetchRequest) -> FetchedParams:
        """Try the targets in order; the first definitive answer (good or bad) decides.

        A target that cannot be resolved or reached, times out or answers 5xx passes the
        turn to the next one; when none is left, the attempt fails transiently and is
        retried. A target at no public address is definitive: the endpoint is misconfigured.
        """
        failures: list[str] = []
        for target in request.targets[:MAX_TARGETS_PER_ATTEMPT]:
            log = logger.bind(internetAddress=request.ascii_domain_name, endpointHost=target.host)
            url = f"https://{target.host}:{target.port}{PARAMS_PATH}"
            try:
                async with asyncio.timeout(FETCH_TIMEOUT):
                    server_name, addresses = await self._allowed_addresses(target, log)
                    response = await self._get_from_any(addresses, target.port, server_name, log)
            except (
                ServerUnreachable,
                TimeoutError,
                OSError,  # from an adapter that let a socket error through
                ResolverUnreachable,
                TargetUnresolvable,
            ) as error:
                log.warning("Failed to retrieve connection params", err=repr(error), url=url)
                failures.append(f"{url}: {_failure_name(error)}")
                continue
            status, content_type, body = response.status, response.content_type, response.body
            if status >= 500:
                log.warning(
                    "Failed to retrieve connection params due to server error", status=status
                )
                failures.append(f"{url}: HTTP {status}")
                continue
            if not 200 <= status < 300:
                log.info(
                    "Failed to retrieve connection params from non-PoHTTP-compatible server",
                    status=status,
                )
                raise misconfigured(f"{url} answered HTTP {status}")
            if _media_type(content_type) != CONNECTION_PARAMS_CONTENT_TYPE:
                log.info(
                    "Received invalid content type for connection params", contentType=content_type
                )
                raise misconfigured(f"{url} served content type {content_type!r}")
            if body is None:
                log.info("Connection params too large", limit=MAX_PARAMS_SIZE)
                raise misconfigured(f"{url} served over {MAX_PARAMS_SIZE} bytes")
            try:
                parse_node_connection_params(body)
            except InvalidConnectionParams as error:
                log.info("Received malformed connection params", err=str(error))
                raise misconfigured(
                    f"{url} served invalid connection parameters: {error}"
                ) from error
            log.debug("Connection params retrieved", size=len(body))
            return FetchedParams(der_b64=base64.b64encode(body).decode("ascii"), host=target.host)
        raise transient("No PoHTTP server answered: " + "; ".join(failures))

    async def _allowed_addresses(
        self, target: ServiceTarget, log: BoundLogger
    ) -> tuple[str | None, list[IPAddress]]:
        """The TLS server name of ``target`` (None for an IP literal) and the addresses
        that may be connected to, in order.

        Raises:
            ApplicationError: misconfigured, if the target is not a host, or if none of
                its addresses is public (unless private ones are allowed).
            TargetUnresolvable: if the name has no address.
            ResolverUnreachable: if the resolver did not answer.
        """
        try:
            host = parse_target_host(target.host)
        except InvalidTargetHost as error:
            log.info("Invalid Awala DNS configuration", err=str(error))
            raise misconfigured(str(error)) from error
        if isinstance(host, str):
            server_name: str | None = host
            addresses = await self._lookup_addresses(host)
        else:
            server_name, addresses = None, [host]
        if not addresses:
            raise TargetUnresolvable(f"{target.host} has no A or AAAA record")
        screened = screen_addresses(addresses, allow_private=self._allow_private)
        refusals = "; ".join(str(refusal) for refusal in screened.refused)
        if not screened.allowed:
            log.warning(
                "Refused connection params target at non-public addresses",
                addresses=[str(refusal.address) for refusal in screened.refused],
                reason=refusals,
            )
            raise misconfigured(f"{target.host} is at no public address: {refusals}")
        if screened.refused:
            log.info("Skipped non-public addresses of connection params target", reason=refusals)
        return server_name, list(screened.allowed)

    async def _lookup_addresses(self, name: str) -> list[IPAddress]:
        """The A and AAAA records of ``name``, through our resolver (never the system's).

        Unlike the SRV record, they need no DNSSEC: TLS authenticates the server.
        """
        results = await asyncio.gather(
            self._lookup(name, dns.rdatatype.A),
            self._lookup(name, dns.rdatatype.AAAA),
            return_exceptions=True,
        )
        addresses: list[IPAddress] = []
        unreachable: ResolverUnreachable | None = None
        for result in results:
            if isinstance(result, ResolverUnreachable):
                unreachable = result
            elif isinstance(result, BaseException):
                raise result
            else:
                addresses += result
        # One family answered: use it rather than fail on the other.
        if not addresses and unreachable is not None:
            raise unreachable
        return addresses

    async def _lookup(self, name: str, rdtype: dns.rdatatype.RdataType) -> list[IPAddress]:
        query = dns.message.make_query(f"{name}.", rdtype, use_edns=0, payload=_EDNS_PAYLOAD)
        response = await self._resolver.query(query)
        if response.rcode() != dns.rcode.NOERROR:
            return []  # NXDOMAIN, SERVFAIL...: no address of this family
        try:
            answer = response.resolve_chaining().answer  # follows CNAMEs, if any
        except dns.exception.DNSException:  # say, a CNAME chain too long
            return []
        return [
            ipaddress.ip_address(rdata.address)
            for rdata in (answer or [])
            if isinstance(rdata, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA)
        ]

    async def _get_from_any(
        self,
        addresses: list[IPAddress],
        port: int,
        server_name: str | None,
        log: BoundLogger,
    ) -> ParamsResponse:
        """``GET`` the parameters from the first of ``addresses`` that can be reached."""
        error: ServerUnreachable | None = None
        for address in addresses:
            try:
                return await self._fetcher.get(address, port, server_name, max_size=MAX_PARAMS_SIZE)
            except ServerUnreachable as failure:
                log.debug("Failed to reach connection params server", address=str(address))
                error = failure
        raise error or TargetUnresolvable("no address to connect to")


def _media_type(content_type: str) -> str:
    # Media types are case-insensitive, and parameters (say "; charset=binary") do not
    # change what the body is; the original compared the whole header verbatim.
    return content_type.split(";", 1)[0].strip().lower()


def _failure_name(error: Exception) -> str:
    # An unreachable server is named as the HTTP library named its failure (ConnectError,
    # ReadTimeout...), which says more to an operator than our wrapper's name.
    return error.kind if isinstance(error, ServerUnreachable) else type(error).__name__
