"""The I/O behind the connection params activities: DNS resolvers and the HTTPS fetch.

``activities.connection_params`` decides; these adapters talk to the network, and turn
their libraries' failures into its exception types (:class:`ResolverUnreachable`,
:class:`ServerUnreachable`).
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Final

import certifi
import dns.asyncquery
import dns.exception
import dns.message
import httpx

from activities.connection_params import (
    FETCH_TIMEOUT,
    PARAMS_PATH,
    ParamsResponse,
    Resolver,
    ResolverUnreachable,
    ServerUnreachable,
)
from awala.target_addresses import IPAddress
from config import DnsResolver, DohResolver

DNS_TIMEOUT: Final = 3.0
_DOH_CONTENT_TYPE: Final = "application/dns-message"


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certifi's CAs, plus those in ``ca_file`` (a private PKI, or a test CA)."""
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


class PlainDnsClient:
    """Plain DNS over UDP, retried over TCP when the answer is truncated."""

    def __init__(self, settings: DnsResolver, *, timeout: float = DNS_TIMEOUT) -> None:
        self._settings = settings
        self._timeout = timeout

    async def query(self, query: dns.message.Message) -> dns.message.QueryMessage:
        try:
            response, _ = await dns.asyncquery.udp_with_fallback(
                query, self._settings.host, timeout=self._timeout, port=self._settings.port
            )
        except (dns.exception.DNSException, OSError, EOFError) as error:
            # Timeout, refused, or a reply that is not a response to our query.
            raise ResolverUnreachable(f"{type(error).__name__}: {error}") from error
        return _query_response(response)


class DohClient:
    """DNS-over-HTTPS (RFC 8484, POST), over our own httpx client.

    dnspython's DoH client needs the separate ``httpx2`` stack; a DoH query is a single
    POST, so ours uses the TLS settings and timeouts of the parameters fetch (in a client
    of its own, which keeps its connection to the resolver alive).
    """

    def __init__(self, url: str, client: httpx.AsyncClient, *, timeout: float = DNS_TIMEOUT):
        self._url = url
        self._client = client
        self._timeout = timeout

    async def query(self, query: dns.message.Message) -> dns.message.QueryMessage:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(
                    self._url,
                    content=query.to_wire(),
                    headers={"content-type": _DOH_CONTENT_TYPE, "accept": _DOH_CONTENT_TYPE},
                )
        except (httpx.HTTPError, TimeoutError) as error:
            raise ResolverUnreachable(f"{type(error).__name__}: {error}") from error
        if response.status_code != 200:
            raise ResolverUnreachable(f"DoH resolver answered HTTP {response.status_code}")
        try:
            answer = dns.message.from_wire(response.content)
        except dns.exception.DNSException as error:
            raise ResolverUnreachable(f"DoH resolver sent a malformed message: {error}") from error
        if not query.is_response(answer):
            raise ResolverUnreachable("DoH resolver answered another query")
        return _query_response(answer)


def _query_response(message: dns.message.Message) -> dns.message.QueryMessage:
    if not isinstance(message, dns.message.QueryMessage):  # e.g. an UPDATE opcode
        raise ResolverUnreachable("The resolver's answer is not a query response")
    return message


def make_resolver(settings: DnsResolver | DohResolver, client: httpx.AsyncClient) -> Resolver:
    if isinstance(settings, DnsResolver):
        return PlainDnsClient(settings)
    return DohClient(settings.url, client)


class HttpsParamsFetcher:
    """Fetches the parameters with httpx from the address it is given, never a name.

    ``client`` carries the TLS trust and the Letro-Server user agent; in production it is
    :func:`make_fetch_client`'s, which the SSRF protection relies on.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def get(
        self, address: IPAddress, port: int, server_name: str | None, *, max_size: int
    ) -> ParamsResponse:
        url = httpx.URL(scheme="https", host=str(address), port=port, path=PARAMS_PATH)
        try:
            return await self._get(url, server_name, max_size)
        except (httpx.HTTPError, OSError) as error:
            raise ServerUnreachable(type(error).__name__, str(error)) from error

    async def _get(self, url: httpx.URL, server_name: str | None, max_size: int) -> ParamsResponse:
        """``url`` has an IP address as host; ``server_name``, if any, is the name the TLS
        certificate must be valid for (httpcore's ``sni_hostname``), and the ``Host``.
        """
        headers: dict[str, str] = {}
        extensions: dict[str, str] = {}
        if server_name is not None:
            headers["host"] = server_name if url.port is None else f"{server_name}:{url.port}"
            extensions["sni_hostname"] = server_name
        async with self._client.stream(
            "GET", url, headers=headers, extensions=extensions
        ) as response:
            content_type = response.headers.get("content-type", "")
            if not 200 <= response.status_code < 300:
                return ParamsResponse(response.status_code, content_type, b"")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_size:
                    return ParamsResponse(response.status_code, content_type, None)
            return ParamsResponse(response.status_code, content_type, bytes(body))


def make_http_client(version: str, ca_file: Path | None) -> httpx.AsyncClient:
    """The client for DoH queries: our user agent, our trust store."""
    return httpx.AsyncClient(
        verify=tls_context(ca_file),
        headers={"user-agent": f"Letro-Server/{version}"},
        timeout=httpx.Timeout(FETCH_TIMEOUT),
        follow_redirects=False,
    )


def make_fetch_client(version: str, ca_file: Path | None) -> httpx.AsyncClient:
    """The client for parameter fetches, which connect to checked IP addresses.

    It keeps no connection alive: httpcore pools a connection by its address, not by the
    TLS server name its certificate was checked for, so a fetch for another name at the
    same address would reuse it unchecked. And it ignores the environment's proxy
    settings, so a fetch goes straight to the address that was checked. Redirects are not
    followed (a 3xx is a misconfigured endpoint).
    """
    return httpx.AsyncClient(
        verify=tls_context(ca_file),
        headers={"user-agent": f"Letro-Server/{version}"},
        timeout=httpx.Timeout(FETCH_TIMEOUT),
        limits=httpx.Limits(max_keepalive_connections=0),
        follow_redirects=False,
        trust_env=False,
    )
