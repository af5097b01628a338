"""Authenticating Pub/Sub push requests by the OIDC token Google signs for each of them.

A push subscription with authentication sends ``Authorization: Bearer <JWT>``: an RS256
token signed by one of Google's keys, whose claims name the subscription's service
account (``email``) and the audience it was configured with. Without this check anyone
who can reach the ingress could speak as any Awala endpoint, because the CloudEvent's
``source`` is the sender's endpoint id.

The module has three layers, so the decision can be tested without any I/O:

1. Pure: :func:`bearer_token`, :func:`parse_token` and :func:`verify_push_token` take
   text and already-parsed keys and either return a :class:`PushIdentity` or raise
   :class:`InvalidPushToken` with a :class:`Reason`. :func:`parse_certificates` and
   :func:`freshness_lifetime` read Google's certificates response.
2. I/O: :class:`GoogleCertificates` fetches the certificates asynchronously and caches
   them for the response's ``max-age``, refetching (rate-limited) when a token names a key
   it does not know, which is how Google's key rotation shows up.
3. Web: :func:`push_authentication` gives the ingress one object whose ``refusal()``
   answers 401 for a bad token and 503 when the certificates cannot be had at all.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import httpx
import structlog
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from google.auth import crypt
from quart import Response

from config import PubSubPushSettings, Settings, Transport

logger = structlog.get_logger("ingress")

ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
# Google's tokens are about 1 KiB; a header far larger is not one of them.
MAX_TOKEN_LENGTH = 8192
# Tolerated difference between Google's clock and ours, for ``exp`` and ``iat``.
CLOCK_SKEW_SECONDS = 60.0

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class Reason(StrEnum):
    """Why a token was refused: precise in our logs, coarse (:attr:`category`) in the answer."""

    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown-key"
    BAD_SIGNATURE = "bad-signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    WRONG_AUDIENCE = "wrong-audience"
    WRONG_ISSUER = "wrong-issuer"
    EMAIL_NOT_VERIFIED = "email-not-verified"
    ACCOUNT_NOT_ALLOWED = "account-not-allowed"

    @property
    def category(self) -> str:
        """What the sender is told: enough to fix a deployment, nothing to probe us with."""
        return _CATEGORIES[self]


_CATEGORIES = {
    Reason.MISSING: "missing token",
    Reason.MALFORMED: "malformed token",
    Reason.UNKNOWN_KEY: "invalid signature",
    Reason.BAD_SIGNATURE: "invalid signature",
    Reason.EXPIRED: "expired token",
    Reason.NOT_YET_VALID: "expired token",
    Reason.WRONG_AUDIENCE: "unacceptable claims",
    Reason.WRONG_ISSUER: "unacceptable claims",
    Reason.EMAIL_NOT_VERIFIED: "unacceptable claims",
    Reason.ACCOUNT_NOT_ALLOWED: "unacceptable claims",
}


class InvalidPushToken(Exception):
    """The push request does not carry a token we accept; answer 401."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class InvalidCertificates(ValueError):
    """The certificates document is not a JSON object of key ids to RSA certificates."""


class CertificatesUnavailable(Exception):
    """No usable certificates: none fetched yet, or too old; answer 503 so the broker retries."""


@dataclass(frozen=True, slots=True)
class PushAuthPolicy:
    """What a token must say: our audience and one of the allowed service accounts."""

    audience: str
    service_accounts: frozenset[str]


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A JWT split and decoded, not yet verified."""

    key_id: str
    claims: Mapping[str, Any]
    signing_input: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class PushIdentity:
    """Who pushed: the verified service account."""

    email: str


# --- pure: the token -------------------------------------------------------------------


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    if not authorization:
        raise InvalidPushToken(Reason.MISSING, "no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    # RFC 7235: the scheme is case-insensitive.
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidPushToken(Reason.MALFORMED, "Authorization is not 'Bearer <token>'")
    return token


def parse_token(token: str) -> ParsedToken:
    """Split and decode a compact JWS (RFC 7515) whose header says RS256 and names its key."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidPushToken(Reason.MALFORMED, f"token longer than {MAX_TOKEN_LENGTH}")
    segments = token.split(".")
    if len(segments) != 3 or not all(_BASE64URL.fullmatch(s) for s in segments):
        raise InvalidPushToken(Reason.MALFORMED, "not three base64url segments")
    header = _json_object(segments[0], "header")
    claims = _json_object(segments[1], "payload")
    # Only RS256: accepting what the token itself names would let it pick "none" or HS256.
    if header.get("alg") != "RS256":
        raise InvalidPushToken(Reason.MALFORMED, "algorithm is not RS256")
    key_id = header.get("kid")
    if not isinstance(key_id, str) or not key_id:
        raise InvalidPushToken(Reason.MALFORMED, "no key id")
    return ParsedToken(
        key_id=key_id,
        claims=claims,
        signing_input=f"{segments[0]}.{segments[1]}".encode("ascii"),
        signature=_base64url(segments[2]),
    )


def verify_push_token(
    token: ParsedToken,
    keys: Mapping[str, crypt.Verifier],
    policy: PushAuthPolicy,
    now: float,
) -> PushIdentity:
    """Check the signature, then the claims, of a token pushed by Pub/Sub at time ``now``."""
    verifier = keys.get(token.key_id)
    if verifier is None:
        raise InvalidPushToken(Reason.UNKNOWN_KEY, "signed by a key Google does not list")
    if not verifier.verify(token.signing_input, token.signature):  # type: ignore[no-untyped-call]
        raise InvalidPushToken(Reason.BAD_SIGNATURE, "signature does not verify")
    # From here on the claims are Google's.
    claims = token.claims
    _check_times(claims, now)
    if not _audience_matches(claims.get("aud"), policy.audience):
        raise InvalidPushToken(Reason.WRONG_AUDIENCE, "audience is not ours")
    if claims.get("iss") not in ISSUERS:
        raise InvalidPushToken(Reason.WRONG_ISSUER, "issuer is not Google")
    email = claims.get("email")
    if not isinstance(email, str):
        raise InvalidPushToken(Reason.ACCOUNT_NOT_ALLOWED, "no email claim")
    # Only the JSON value true: a string "false" must not pass as truthy.
    if claims.get("email_verified") is not True:
        raise InvalidPushToken(Reason.EMAIL_NOT_VERIFIED, f"email {email!r} not verified")
    if email.lower() not in policy.service_accounts:
        raise InvalidPushToken(Reason.ACCOUNT_NOT_ALLOWED, f"service account {email!r}")
    return PushIdentity(email=email.lower())


def _json_object(segment: str, what: str) -> Mapping[str, Any]:
    try:
        value = json.loads(_base64url(segment))
    except (ValueError, RecursionError) as error:
        # ValueError includes UnicodeDecodeError; RecursionError: absurdly deep nesting.
        raise InvalidPushToken(Reason.MALFORMED, f"{what} is not JSON") from error
    if not isinstance(value, dict):
        raise InvalidPushToken(Reason.MALFORMED, f"{what} is not a JSON object")
    return value


def _base64url(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error as error:  # a length of 4n+1 characters
        raise InvalidPushToken(Reason.MALFORMED, "bad base64url") from error


def _check_times(claims: Mapping[str, Any], now: float) -> None:
    if now > _number(claims, "exp") + CLOCK_SKEW_SECONDS:
        raise InvalidPushToken(Reason.EXPIRED, "token expired")
    if _number(claims, "iat") > now + CLOCK_SKEW_SECONDS:
        raise InvalidPushToken(Reason.NOT_YET_VALID, "token issued in the future")


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    # bool is an int; NaN, infinities and huge integers make comparisons meaningless.
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise InvalidPushToken(Reason.MALFORMED, f"{name} is not a number")


def _audience_matches(claim: object, audience: str) -> bool:
    # RFC 7519 allows one audience or a list; Google sends one.
    if isinstance(claim, list):
        return audience in claim
    return claim == audience


# --- pure: the certificates ------------------------------------------------------------

# Google's certificates are re-published every few hours; never trust a copy longer.
MAX_CACHE_SECONDS = 86400.0
# When the response does not say (Google's always does).
DEFAULT_CACHE_SECONDS = 300.0


def parse_certificates(body: bytes) -> dict[str, crypt.Verifier]:
    """A verifier per key id of a ``{kid: PEM certificate}`` document; bad entries are skipped."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise InvalidCertificates("certificates document is not JSON") from error
    if not isinstance(document, dict):
        raise InvalidCertificates("certificates document is not a JSON object")
    keys: dict[str, crypt.Verifier] = {}
    for key_id, pem in document.items():
        verifier = _rsa_verifier(pem)
        if verifier is None:
            logger.warning("Skipped an unusable Pub/Sub push certificate", keyId=key_id[:100])
            continue
        keys[key_id] = verifier
    if not keys:
        raise InvalidCertificates("no usable RSA certificate in the document")
    return keys


def _rsa_verifier(pem: object) -> crypt.Verifier | None:
    if not isinstance(pem, str):
        return None
    try:
        public_key = x509.load_pem_x509_certificate(pem.encode()).public_key()
    except ValueError:
        return None
    # google-auth's RSA verifier would raise TypeError on any other key type.
    if not isinstance(public_key, RSAPublicKey):
        return None
    verifier: crypt.Verifier = crypt.RSAVerifier(public_key)  # type: ignore[no-untyped-call]
    return verifier


def freshness_lifetime(cache_control: str | None, age: str | None) -> float:
    """Seconds the response stays fresh (RFC 9111: ``max-age`` minus ``Age``), capped."""
    lifetime = DEFAULT_CACHE_SECONDS
    for directive in (cache_control or "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-cache", "no-store"):
            return 0.0
        if name == "max-age" and value.strip().isdigit():
            lifetime = float(value.strip())
    if age is not None and age.strip().isdigit():
        lifetime -= float(age.strip())
    return min(max(lifetime, 0.0), MAX_CACHE_SECONDS)


# --- I/O: fetching and caching the certificates ----------------------------------------

# At most one fetch per interval, whatever tokens arrive: junk key ids cannot make us
# hammer Google, and a failed fetch is not retried on every request.
MIN_REFRESH_INTERVAL_SECONDS = 30.0
# How long expired certificates stay usable while refreshes fail: Google lists a key
# well before and after it signs with it, and a 503 storm would push every message
# towards the dead-letter topic.
STALE_IF_ERROR_SECONDS = 86400.0
FETCH_TIMEOUT_SECONDS = 5.0  # within Pub/Sub's push deadline
MAX_CERTIFICATES_BYTES = 256 * 1024


class GoogleCertificates:
    """Google's OIDC signing certificates, fetched on demand and cached per ``max-age``."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL_SECONDS,
        stale_if_error: float = STALE_IF_ERROR_SECONDS,
    ) -> None:
        self._url = url
        self._client = client or httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS)
        self._clock = clock
        self._min_refresh_interval = min_refresh_interval
        self._stale_if_error = stale_if_error
        self._keys: dict[str, crypt.Verifier] = {}
        self._fresh_until = -math.inf
        self._last_attempt = -math.inf
        self._lock = asyncio.Lock()

    async def keys_for(self, key_id: str) -> Mapping[str, crypt.Verifier]:
        """The keys to verify a token signed by ``key_id``, refreshed if they may be outdated.

        The answer may lack ``key_id``: the token then names a key Google does not list.
        """
        if not self._needs_refresh(key_id):
            return self._keys
        async with self._lock:
            # Another request may have refreshed while this one waited.
            if self._needs_refresh(key_id) and self._may_refresh():
                await self._refresh()
        if not self._keys or self._clock() >= self._fresh_until + self._stale_if_error:
            raise CertificatesUnavailable(f"no usable certificates from {self._url}")
        return self._keys

    async def aclose(self) -> None:
        await self._client.aclose()

    def _needs_refresh(self, key_id: str) -> bool:
        return self._clock() >= self._fresh_until or key_id not in self._keys

    def _may_refresh(self) -> bool:
        return self._clock() - self._last_attempt >= self._min_refresh_interval

    async def _refresh(self) -> None:
        self._last_attempt = self._clock()
        try:
            keys, lifetime = await self._fetch()
        except (httpx.HTTPError, InvalidCertificates) as error:
            logger.warning(
                "Could not fetch the Pub/Sub push certificates",
                url=self._url,
                err=str(error) or type(error).__name__,
                keptKeys=len(self._keys),
            )
            return
        self._keys = keys
        self._fresh_until = self._last_attempt + lifetime
        logger.info(
            "Fetched the Pub/Sub push certificates", url=self._url, keys=len(keys), maxAge=lifetime
        )

    async def _fetch(self) -> tuple[dict[str, crypt.Verifier], float]:
        async with self._client.stream("GET", self._url) as response:
            if response.status_code != 200:
                raise InvalidCertificates(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_CERTIFICATES_BYTES:
                    raise InvalidCertificates(f"response over {MAX_CERTIFICATES_BYTES} bytes")
        lifetime = freshness_lifetime(
            response.headers.get("cache-control"), response.headers.get("age")
        )
        return parse_certificates(bytes(body)), lifetime


# --- web: what the ingress calls -------------------------------------------------------


class PushAuthentication(Protocol):
    async def refusal(self, authorization: str | None) -> Response | None:
        """The answer to send instead of handling the request, or None to go on."""

    async def aclose(self) -> None: ...


class PubSubPushAuthenticator:
    """Accepts a push only with a valid token from an allowed service account."""

    def __init__(self, policy: PushAuthPolicy, certificates: GoogleCertificates) -> None:
        self._policy = policy
        self._certificates = certificates

    async def authenticate(self, authorization: str | None) -> PushIdentity:
        token = parse_token(bearer_token(authorization))
        keys = await self._certificates.keys_for(token.key_id)
        return verify_push_token(token, keys, self._policy, now=time.time())

    async def refusal(self, authorization: str | None) -> Response | None:
        try:
            await self.authenticate(authorization)
        except InvalidPushToken as error:
            logger.warning(
                "Refused Pub/Sub push with an invalid token",
                reason=error.reason.value,
                detail=error.detail[:200],
            )
            return _json_response(401, "Invalid push token", error.reason.category, bearer=True)
        except CertificatesUnavailable as error:
            logger.error("Cannot authenticate Pub/Sub pushes; Pub/Sub will retry", err=str(error))
            return _json_response(503, "Cannot authenticate the push now", "try again later")
        return None

    async def aclose(self) -> None:
        await self._certificates.aclose()


class NoPushAuthentication:
    """HTTP mode (kept private by the network), or Pub/Sub without the settings (warned)."""

    async def refusal(self, authorization: str | None) -> Response | None:
        return None

    async def aclose(self) -> None:
        return None


def push_authentication(settings: Settings) -> PushAuthentication:
    """What the ingress checks on each push, per the settings; logs what it decided."""
    if settings.transport is not Transport.GOOGLE_PUBSUB:
        return NoPushAuthentication()
    push = settings.pubsub_push
    if push.audience is None:
        logger.warning(
            "Pub/Sub pushes are NOT authenticated: anyone who can reach the ingress can send"
            " messages as any Awala endpoint; set PUBSUB_PUSH_AUDIENCE and"
            " PUBSUB_PUSH_SERVICE_ACCOUNTS"
        )
        return NoPushAuthentication()
    logger.info(
        "Pub/Sub pushes are authenticated",
        audience=push.audience,
        serviceAccounts=list(push.service_accounts),
        certsUrl=push.certs_url,
    )
    return PubSubPushAuthenticator(_policy(push), GoogleCertificates(push.certs_url))


def _policy(push: PubSubPushSettings) -> PushAuthPolicy:
    if push.audience is None:  # load_settings requires it with the service accounts
        raise ValueError("PUBSUB_PUSH_AUDIENCE is not set")
    return PushAuthPolicy(
        audience=push.audience,
        service_accounts=frozenset(account.lower() for account in push.service_accounts),
    )


def _json_response(status: int, message: str, detail: str, *, bearer: bool = False) -> Response:
    response = Response(
        json.dumps({"message": message, "detail": detail}), status, mimetype="application/json"
    )
    if bearer:  # RFC 6750 section 3
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response
