"""A client for the VeraId Authority's HTTP API: the ``accounts.Authority`` the activities use.

Every failure, httpx's included, becomes one of the ``accounts.AuthorityError`` types, so
the activities decide what to retry without knowing HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from activities import accounts

USER_AGENT = "Letro server (https://github.com/relaycorp/letro-server)"
_MEMBER_BUNDLE_TYPE = "application/vnd.veraid.member-bundle"
# Google ID tokens live an hour; refresh well before, as the original server did.
_ID_TOKEN_LIFETIME_SECONDS = 15 * 60


class TokenSource(Protocol):
    async def token(self) -> str: ...


@dataclass(frozen=True)
class StaticToken:
    """A bearer token from the configuration, for deployments outside Google Cloud."""

    value: str

    async def token(self) -> str:
        return self.value


class GoogleIdToken:
    """Google ID tokens for ``audience`` from the ambient credentials (the service account)."""

    def __init__(self, audience: str) -> None:
        self._audience = audience
        self._cached: tuple[str, float] | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._cached and time.monotonic() < self._cached[1]:
                return self._cached[0]
            try:
                value = await asyncio.to_thread(self._fetch)
            except Exception as error:  # google-auth raises several unrelated types
                raise accounts.AuthorityUnavailable(
                    f"Could not get a Google ID token: {error}"
                ) from error
            self._cached = (value, time.monotonic() + _ID_TOKEN_LIFETIME_SECONDS)
            return value

    def _fetch(self) -> str:
        # Imported here: only deployments on Google Cloud need it.
        import google.auth.transport.requests
        import google.oauth2.id_token

        request = google.auth.transport.requests.Request()
        token: str = google.oauth2.id_token.fetch_id_token(  # type: ignore[no-untyped-call]
            request, self._audience
        )
        return token


class AuthorityClient:
    """The Authority over HTTP, with a bearer token from ``tokens`` on every call."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._client = httpx.AsyncClient(
            timeout=timeout, transport=transport, headers={"User-Agent": USER_AGENT}
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def create_member(self, organisation: str, name: str) -> accounts.MemberPaths:
        body = await self._json(
            "POST",
            f"/orgs/{organisation}/members",
            {"name": name, "role": "REGULAR"},
            operation="create member",
        )
        return accounts.MemberPaths(_path(body, "self"), _path(body, "publicKeys"))

    async def import_public_key(
        self, public_keys_path: str, public_key_der: bytes, service_oid: str
    ) -> accounts.PublicKeyPaths:
        body = await self._json(
            "POST",
            public_keys_path,
            {"publicKey": base64.b64encode(public_key_der).decode(), "serviceOid": service_oid},
            operation="import public key",
        )
        return accounts.PublicKeyPaths(_path(body, "self"), _path(body, "bundle"))

    async def get_member_bundle(self, bundle_path: str) -> bytes:
        response = await self._send("GET", bundle_path, None, operation="get member bundle")
        if not response.headers.get("content-type", "").startswith(_MEMBER_BUNDLE_TYPE):
            raise accounts.AuthorityInvalidResponse(
                f"Member bundle came as {response.headers.get('content-type')!r}"
            )
        return response.content

    async def delete_member(self, member_path: str) -> None:
        await self._send("DELETE", member_path, None, operation="delete member")

    async def _json(
        self, method: str, path: str, body: dict[str, Any], *, operation: str
    ) -> dict[str, Any]:
        response = await self._send(method, path, body, operation=operation)
        if not response.headers.get("content-type", "").startswith("application/json"):
            raise accounts.AuthorityInvalidResponse(f"{operation}: answer is not JSON")
        try:
            decoded = response.json()
        except ValueError as error:
            raise accounts.AuthorityInvalidResponse(
                f"{operation}: malformed JSON ({error})"
            ) from None
        if not isinstance(decoded, dict):
            raise accounts.AuthorityInvalidResponse(f"{operation}: answer is not a JSON object")
        return decoded

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None, *, operation: str
    ) -> httpx.Response:
        if not path.startswith("/"):
            raise accounts.AuthorityInvalidResponse(
                f"{operation}: {path!r} is not an absolute path"
            )
        headers = {"Authorization": f"Bearer {await self._tokens.token()}"}
        try:
            response = await self._client.request(
                method, self._base_url + path, json=body, headers=headers
            )
        except httpx.HTTPError as error:  # timeouts, refused connections, broken responses
            raise accounts.AuthorityUnavailable(
                f"{operation}: {type(error).__name__}: {error}"
            ) from error
        status = response.status_code
        if status < 300:
            return response
        if status >= 500 or status in (408, 429):
            raise accounts.AuthorityUnavailable(f"{operation}: HTTP {status}")
        problem, message = _error_body(response)
        if status in (401, 403):  # 401 {statusCode,error,message}; 403 has no body
            raise accounts.AuthorityUnauthorised(status, message, operation)
        error_type: type[accounts.AuthorityRefused] = accounts.AuthorityRefused
        if status == 404:  # a bundle's 404 (unknown organisation) has no body
            error_type = accounts.AuthorityNotFound
        elif status == 409:
            error_type = accounts.MemberNameTaken
        raise error_type(status, problem or message, operation)


def _path(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.startswith("/"):
        raise accounts.AuthorityInvalidResponse(f"Field {key!r} is missing or not a path")
    return value


def _error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    """The problem ``type`` and the ``message`` of an error answer, where it has them.

    The Authority's own problems are ``{"type": ...}``; schema violations are Fastify
    validation bodies, and 401 a Fastify error body, ``{statusCode, error, message}`` with
    no ``type``; bundle 404 and 503 and every 403 have no body at all.
    """
    try:
        decoded = response.json()
    except ValueError:
        return None, None
    if not isinstance(decoded, dict):
        return None, None
    problem, message = decoded.get("type"), decoded.get("message")
    return (
        problem if isinstance(problem, str) else None,
        message[:200] if isinstance(message, str) else None,  # bounded: it goes in logs
    )
