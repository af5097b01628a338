"""Pub/Sub push authentication: the pure verifier, the certificate cache, and the ingress.

Google is replaced by what it publishes: a local HTTP server serves a ``{kid: PEM}``
certificates document holding a test key's self-signed certificate, and the tests sign
their own tokens with that key, as Google signs a push subscription's OIDC token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypothesis import given
from hypothesis import strategies as st
from quart import Quart, Response
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from infra.agents import Agent, new_agent
from infra.services import free_port
from ingress.push_auth import (
    CertificatesUnavailable,
    GoogleCertificates,
    InvalidCertificates,
    InvalidPushToken,
    PushAuthPolicy,
    PushIdentity,
    Reason,
    bearer_token,
    freshness_lifetime,
    parse_certificates,
    parse_token,
    verify_push_token,
)
from letro.content_types import PAIRING_REQUEST_TMP
from tests.conftest import Ingress, StartIngress
from tests.helpers import SERVER_ENDPOINT_ID
from workflows.legacy_pairing import workflow_id_for

AUDIENCE = "https://letro.example/incoming"
PUSHER = "awala-push@letro-test.iam.gserviceaccount.com"
POLICY = PushAuthPolicy(audience=AUDIENCE, service_accounts=frozenset({PUSHER}))


# --- keys and tokens, as Google makes them ---------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private_key: rsa.RSAPrivateKey
    certificate_pem: str

    def sign(self, claims: dict[str, Any], *, key_id: str | None = None) -> str:
        signer = crypt.RSASigner(self.private_key, key_id=key_id or self.key_id)  # type: ignore[no-untyped-call]
        token: bytes = jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
        return token.decode()


def make_key(key_id: str) -> SigningKey:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(key_id, private_key, _self_signed(private_key).decode())


def _self_signed(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-google-signer")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=14))
        .sign(private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return make_key("google-key-1")


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    """A key Google does not list: an attacker's."""
    return make_key("attacker-key")


# A fixed time for the pure verifier, which is told the time: no test depends on how long
# the session has been running.
NOW = 1_800_000_000


def google_claims(*, at: int | None = None, **changes: Any) -> dict[str, Any]:
    """The claims of a Pub/Sub push token issued ``at`` (default: now), with changes."""
    now = int(time.time()) if at is None else at
    claims = {
        "aud": AUDIENCE,
        "azp": "109876543210987654321",
        "email": PUSHER,
        "email_verified": True,
        "exp": now + 3600,
        "iat": now,
        "iss": "https://accounts.google.com",
        "sub": "109876543210987654321",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def keys_of(*keys: SigningKey) -> dict[str, crypt.Verifier]:
    return parse_certificates(json.dumps({k.key_id: k.certificate_pem for k in keys}).encode())


def _segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _unsigned(header: object, claims: object, signature: str = "c2ln") -> str:
    return f"{_segment(header)}.{_segment(claims)}.{signature}"


# --- the pure verifier -----------------------------------------------------------------


def test_a_google_signed_token_is_accepted(google_key: SigningKey) -> None:
    token = parse_token(google_key.sign(google_claims(at=NOW)))
    identity = verify_push_token(token, keys_of(google_key), POLICY, now=NOW)
    assert identity == PushIdentity(email=PUSHER)


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "accounts.google.com"},
        {"aud": ["https://other.example/", AUDIENCE]},
        {"email": PUSHER.upper()},
        # Within the tolerated clock skew.
        {"exp": NOW - 30},
        {"iat": NOW + 30},
    ],
    ids=["issuer without scheme", "audience list", "email case", "just expired", "just issued"],
)
def test_token_variants_google_may_send_are_accepted(
    google_key: SigningKey, changes: dict[str, Any]
) -> None:
    token = parse_token(google_key.sign(google_claims(at=NOW, **changes)))
    assert verify_push_token(token, keys_of(google_key), POLICY, now=NOW).email == PUSHER


CLAIM_REFUSALS: dict[str, tuple[dict[str, Any], Reason]] = {
    "other audience": ({"aud": "https://elsewhere.example/"}, Reason.WRONG_AUDIENCE),
    "audience list without ours": ({"aud": ["https://elsewhere.example/"]}, Reason.WRONG_AUDIENCE),
    "no audience": ({"aud": None}, Reason.WRONG_AUDIENCE),
    "expired": ({"exp": NOW - 120}, Reason.EXPIRED),
    "issued in the future": ({"iat": NOW + 600}, Reason.NOT_YET_VALID),
    "wrong issuer": ({"iss": "https://evil.example"}, Reason.WRONG_ISSUER),
    "no issuer": ({"iss": None}, Reason.WRONG_ISSUER),
    "other account": (
        {"email": "intruder@evil.iam.gserviceaccount.com"},
        Reason.ACCOUNT_NOT_ALLOWED,
    ),
    "no email": ({"email": None}, Reason.ACCOUNT_NOT_ALLOWED),
    "email as a list": ({"email": [PUSHER]}, Reason.ACCOUNT_NOT_ALLOWED),
    "email not verified": ({"email_verified": False}, Reason.EMAIL_NOT_VERIFIED),
    "email_verified as text": ({"email_verified": "false"}, Reason.EMAIL_NOT_VERIFIED),
    "email_verified missing": ({"email_verified": None}, Reason.EMAIL_NOT_VERIFIED),
    "no expiry": ({"exp": None}, Reason.MALFORMED),
    "no issue time": ({"iat": None}, Reason.MALFORMED),
    "expiry as text": ({"exp": "tomorrow"}, Reason.MALFORMED),
    "expiry as boolean": ({"exp": True}, Reason.MALFORMED),
    "expiry NaN": ({"exp": float("nan")}, Reason.MALFORMED),
    "expiry infinite": ({"exp": float("inf")}, Reason.MALFORMED),
    "expiry beyond float": ({"exp": 10**400}, Reason.MALFORMED),
}


@pytest.mark.parametrize(("changes", "reason"), CLAIM_REFUSALS.values(), ids=list(CLAIM_REFUSALS))
def test_signed_tokens_with_unacceptable_claims_are_refused(
    google_key: SigningKey, changes: dict[str, Any], reason: Reason
) -> None:
    token = parse_token(google_key.sign(google_claims(at=NOW, **changes)))
    with pytest.raises(InvalidPushToken) as error:
        verify_push_token(token, keys_of(google_key), POLICY, now=NOW)
    assert error.value.reason is reason


def test_token_from_an_unknown_key_is_refused(
    google_key: SigningKey, other_key: SigningKey
) -> None:
    token = parse_token(other_key.sign(google_claims(at=NOW)))
    with pytest.raises(InvalidPushToken) as error:
        verify_push_token(token, keys_of(google_key), POLICY, now=NOW)
    assert error.value.reason is Reason.UNKNOWN_KEY


def test_token_forged_under_google_key_id_is_refused(
    google_key: SigningKey, other_key: SigningKey
) -> None:
    token = parse_token(other_key.sign(google_claims(at=NOW), key_id=google_key.key_id))
    with pytest.raises(InvalidPushToken) as error:
        verify_push_token(token, keys_of(google_key), POLICY, now=NOW)
    assert error.value.reason is Reason.BAD_SIGNATURE


def test_token_with_altered_claims_is_refused(google_key: SigningKey) -> None:
    header, _, signature = google_key.sign(google_claims(at=NOW, email="x@evil.example")).split(".")
    altered = f"{header}.{_segment(google_claims(at=NOW))}.{signature}"
    with pytest.raises(InvalidPushToken) as error:
        verify_push_token(parse_token(altered), keys_of(google_key), POLICY, now=NOW)
    assert error.value.reason is Reason.BAD_SIGNATURE


def test_the_verifier_uses_the_time_it_is_given(google_key: SigningKey) -> None:
    token = parse_token(google_key.sign(google_claims(at=NOW)))
    later = NOW + 3600 + 61
    with pytest.raises(InvalidPushToken) as error:
        verify_push_token(token, keys_of(google_key), POLICY, now=later)
    assert error.value.reason is Reason.EXPIRED


RS256 = {"alg": "RS256", "kid": "k", "typ": "JWT"}
NOT_UTF8 = base64.urlsafe_b64encode(b"{\xff}").decode().rstrip("=")
DEEPLY_NESTED = base64.urlsafe_b64encode(b"[" * 5000).decode().rstrip("=")
MALFORMED_TOKENS = {
    "empty": "",
    "two segments": "a.b",
    "four segments": "a.b.c.d",
    "not base64url": "a*.b.c",
    "padded": _unsigned(RS256, {}) + "=",
    "impossible base64 length": "abcde.b.c",
    "header not JSON": "bm90IGpzb24.e30.c2ln",
    "header a list": _unsigned(["RS256"], {}),
    "payload a string": _unsigned(RS256, "claims"),
    "payload not UTF-8": f"{_segment(RS256)}.{NOT_UTF8}.c2ln",
    "alg none": _unsigned({"alg": "none", "kid": "k"}, google_claims(), ""),
    "alg HS256": _unsigned({"alg": "HS256", "kid": "k"}, google_claims()),
    "no alg": _unsigned({"kid": "k"}, google_claims()),
    "no key id": _unsigned({"alg": "RS256"}, google_claims()),
    "key id a number": _unsigned({"alg": "RS256", "kid": 1}, google_claims()),
    "deeply nested": f"{_segment(RS256)}.{DEEPLY_NESTED}.c2ln",
    "too long": _unsigned(RS256, {"pad": "x" * 9000}),
}


@pytest.mark.parametrize("token", MALFORMED_TOKENS.values(), ids=list(MALFORMED_TOKENS))
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidPushToken) as error:
        parse_token(token)
    assert error.value.reason is Reason.MALFORMED


@given(st.text(max_size=300))
def test_any_text_is_a_token_or_a_refusal(text: str) -> None:
    # h11's fuzzing rule: our own error type, never anything else.
    with contextlib.suppress(InvalidPushToken):
        parse_token(bearer_token(text))


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_any_segments_are_a_token_or_a_refusal(header: bytes, claims: bytes) -> None:
    encode = base64.urlsafe_b64encode
    token = f"{encode(header).decode()}.{encode(claims).decode()}.c2ln".replace("=", "")
    with contextlib.suppress(InvalidPushToken):
        parse_token(token)


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer  abc.def.ghi ", "abc.def.ghi")],
)
def test_bearer_token(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, Reason.MISSING),
        ("", Reason.MISSING),
        ("Basic dXNlcjpwYXNz", Reason.MALFORMED),
        ("Bearer", Reason.MALFORMED),
        ("Bearer a.b.c d", Reason.MALFORMED),
        ("abc.def.ghi", Reason.MALFORMED),
    ],
)
def test_bad_authorization_headers(header: str | None, reason: Reason) -> None:
    with pytest.raises(InvalidPushToken) as error:
        bearer_token(header)
    assert error.value.reason is reason


def test_refusals_tell_the_sender_only_a_category() -> None:
    categories = {reason.category for reason in Reason}
    assert categories == {
        "missing token",
        "malformed token",
        "invalid signature",
        "expired token",
        "unacceptable claims",
    }
    # An unknown key and a bad signature look the same from outside.
    assert Reason.UNKNOWN_KEY.category == Reason.BAD_SIGNATURE.category


# --- the certificates document ---------------------------------------------------------


def test_certificates_document_keeps_only_rsa_certificates(google_key: SigningKey) -> None:
    ec_pem = _self_signed(ec.generate_private_key(ec.SECP256R1())).decode()
    document = {
        google_key.key_id: google_key.certificate_pem,
        "ec": ec_pem,
        "garbage": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
        "number": 42,
    }
    keys = parse_certificates(json.dumps(document).encode())
    assert set(keys) == {google_key.key_id}
    token = parse_token(google_key.sign(google_claims(at=NOW)))
    assert verify_push_token(token, keys, POLICY, now=NOW).email == PUSHER


@pytest.mark.parametrize(
    "body",
    [b"<html>", b"[]", b'{"k": "not a certificate"}', b"{}", b"[" * 100_000],
    ids=["not JSON", "a list", "no certificate", "empty", "deeply nested"],
)
def test_unusable_certificates_documents(body: bytes) -> None:
    with pytest.raises(InvalidCertificates):
        parse_certificates(body)


@pytest.mark.parametrize(
    ("cache_control", "age", "seconds"),
    [
        ("public, max-age=19204, must-revalidate, no-transform", None, 19204),
        ("max-age=600", "100", 500),
        ("MAX-AGE=60", None, 60),
        ("max-age=60", "600", 0),
        ("no-cache, max-age=600", None, 0),
        ("no-store", None, 0),
        ("max-age=soon", None, 300),
        (None, None, 300),
        ("max-age=99999999", None, 86400),
        ("max-age=600", "a while", 600),
    ],
)
def test_freshness_lifetime(cache_control: str | None, age: str | None, seconds: float) -> None:
    assert freshness_lifetime(cache_control, age) == seconds


# --- a local stand-in for Google's certificates URL ------------------------------------


@dataclass
class CertServer:
    """Serves ``document`` as Google serves its certificates; counts the fetches."""

    url: str
    document: dict[str, str]
    cache_control: str = "public, max-age=300"
    status: int = 200
    fetches: int = 0


@contextlib.asynccontextmanager
async def serve_certificates(*keys: SigningKey) -> AsyncIterator[CertServer]:
    port = free_port()
    server = CertServer(
        url=f"http://127.0.0.1:{port}/oauth2/v1/certs",
        document={key.key_id: key.certificate_pem for key in keys},
    )
    app = Quart(__name__)

    @app.get("/oauth2/v1/certs")
    async def certificates() -> Response:
        server.fetches += 1
        return Response(
            json.dumps(server.document),
            server.status,
            mimetype="application/json",
            headers={"Cache-Control": server.cache_control},
        )

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    async with httpx.AsyncClient() as client:
        async with asyncio.timeout(10):
            while True:
                try:
                    await client.get(server.url.replace("/oauth2/v1/certs", "/ready"))
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
    try:
        yield server
    finally:
        stop.set()
        await task


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class CacheUnderTest:
    certificates: GoogleCertificates
    server: CertServer
    clock: Clock = field(default_factory=Clock)


@contextlib.asynccontextmanager
async def certificate_cache(*keys: SigningKey) -> AsyncIterator[CacheUnderTest]:
    async with serve_certificates(*keys) as server:
        clock = Clock()
        certificates = GoogleCertificates(
            server.url, clock=clock, min_refresh_interval=30, stale_if_error=600
        )
        try:
            yield CacheUnderTest(certificates, server, clock)
        finally:
            await certificates.aclose()


# --- the certificate cache -------------------------------------------------------------


async def test_certificates_are_cached_for_their_max_age(google_key: SigningKey) -> None:
    async with certificate_cache(google_key) as cache:
        cache.server.cache_control = "public, max-age=120"
        for _ in range(3):
            assert google_key.key_id in await cache.certificates.keys_for(google_key.key_id)
        cache.clock.now += 119
        await cache.certificates.keys_for(google_key.key_id)
        assert cache.server.fetches == 1
        cache.clock.now += 2
        await cache.certificates.keys_for(google_key.key_id)
        assert cache.server.fetches == 2


async def test_concurrent_requests_share_one_fetch(google_key: SigningKey) -> None:
    async with certificate_cache(google_key) as cache:
        results = await asyncio.gather(
            *(cache.certificates.keys_for(google_key.key_id) for _ in range(20))
        )
        assert all(google_key.key_id in keys for keys in results)
        assert cache.server.fetches == 1


async def test_unknown_key_refetches_at_most_once_per_interval(
    google_key: SigningKey, other_key: SigningKey
) -> None:
    async with certificate_cache(google_key) as cache:
        await cache.certificates.keys_for(google_key.key_id)
        # Google rotates: a new key appears in the document.
        cache.server.document[other_key.key_id] = other_key.certificate_pem
        cache.clock.now += 1
        for _ in range(50):  # junk key ids, as an attacker would send
            keys = await cache.certificates.keys_for(f"junk-{uuid.uuid4()}")
            assert google_key.key_id in keys
        assert other_key.key_id not in await cache.certificates.keys_for(other_key.key_id)
        assert cache.server.fetches == 1
        cache.clock.now += 30
        assert other_key.key_id in await cache.certificates.keys_for(other_key.key_id)
        assert cache.server.fetches == 2


async def test_failed_refresh_keeps_previous_certificates_for_a_while(
    google_key: SigningKey,
) -> None:
    async with certificate_cache(google_key) as cache:
        cache.server.cache_control = "max-age=60"
        await cache.certificates.keys_for(google_key.key_id)
        cache.server.status = 500
        cache.clock.now += 61
        assert google_key.key_id in await cache.certificates.keys_for(google_key.key_id)
        assert cache.server.fetches == 2
        cache.clock.now += 600  # beyond stale_if_error after expiry
        with pytest.raises(CertificatesUnavailable):
            await cache.certificates.keys_for(google_key.key_id)
        cache.server.status = 200
        cache.clock.now += 30
        assert google_key.key_id in await cache.certificates.keys_for(google_key.key_id)


async def test_certificates_that_cannot_be_fetched_are_unavailable(
    google_key: SigningKey,
) -> None:
    async with certificate_cache(google_key) as cache:
        cache.server.document = {"k": "not a certificate"}
        with pytest.raises(CertificatesUnavailable):
            await cache.certificates.keys_for("k")
        # The failure is not retried on every request either.
        with pytest.raises(CertificatesUnavailable):
            await cache.certificates.keys_for("k")
        assert cache.server.fetches == 1
    closed = GoogleCertificates(f"http://127.0.0.1:{free_port()}/certs")
    try:
        with pytest.raises(CertificatesUnavailable):
            await closed.keys_for("k")
    finally:
        await closed.aclose()


# --- through the real ingress ----------------------------------------------------------

# No worker polls this queue: a started workflow is the effect we look for, and nothing
# more happens to it.
TASK_QUEUE = "letro-push-auth-no-worker"


def push_body(requester: Agent, target: Agent) -> bytes:
    """A Pub/Sub push request body carrying a legacy pairing request."""
    attributes = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "type": "tech.relaycorp.awala.endpoint-internet.incoming-service-message",
        "source": requester.endpoint_id,
        "subject": SERVER_ENDPOINT_ID,
        "datacontenttype": PAIRING_REQUEST_TMP,
        "time": "2026-11-21T10:00:00.000Z",
        "expiry": "2027-02-21T10:00:00.000Z",
    }
    message = {
        "attributes": attributes,
        "data": base64.b64encode(requester.legacy_pairing_request(target)).decode(),
        "messageId": str(uuid.uuid4().int)[:16],
        "publishTime": "2026-11-21T10:00:00.000Z",
    }
    envelope = {"message": message, "subscription": "projects/letro-test/subscriptions/in"}
    return json.dumps(envelope).encode()


async def workflow_exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def log_events(ingress: Ingress) -> list[dict[str, Any]]:
    log_file = ingress.process.log_file
    assert log_file is not None
    events = []
    for line in log_file.read_text().splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return events


@pytest.fixture(scope="module")
async def cert_server(google_key: SigningKey) -> AsyncIterator[CertServer]:
    async with serve_certificates(google_key) as server:
        yield server


def _start(start_ingress: StartIngress, **env: str) -> Ingress:
    return start_ingress(
        CE_TRANSPORT="google-pubsub",
        TEMPORAL_TASK_QUEUE=TASK_QUEUE,
        PUBSUB_PUSH_AUDIENCE=AUDIENCE,
        PUBSUB_PUSH_SERVICE_ACCOUNTS=f"someone-else@p.iam.gserviceaccount.com,{PUSHER}",
        **env,
    )


@pytest.fixture(scope="module")
def authenticated_ingress(
    start_ingress: StartIngress, cert_server: CertServer
) -> Iterator[Ingress]:
    ingress = _start(start_ingress, PUBSUB_PUSH_CERTS_URL=cert_server.url)
    yield ingress
    ingress.process.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


INGRESS_REFUSALS: dict[str, tuple[str, Reason]] = {
    # test id: (what the test sends, the reason the ingress logs)
    "no token": ("none", Reason.MISSING),
    "malformed header": ("basic", Reason.MALFORMED),
    "not a JWT": ("garbage", Reason.MALFORMED),
    "other audience": ("aud", Reason.WRONG_AUDIENCE),
    "expired": ("exp", Reason.EXPIRED),
    "other service account": ("email", Reason.ACCOUNT_NOT_ALLOWED),
    "email not verified": ("email_verified", Reason.EMAIL_NOT_VERIFIED),
    "wrong issuer": ("iss", Reason.WRONG_ISSUER),
    "unknown key": ("unknown-key", Reason.UNKNOWN_KEY),
    "forged under Google's key id": ("forged", Reason.BAD_SIGNATURE),
}


def refused_headers(case: str, google_key: SigningKey, other_key: SigningKey) -> dict[str, str]:
    now = int(time.time())
    claim_changes: dict[str, dict[str, Any]] = {
        "aud": {"aud": "https://elsewhere.example/"},
        "exp": {"iat": now - 7200, "exp": now - 3600},
        "email": {"email": "intruder@evil-project.iam.gserviceaccount.com"},
        "email_verified": {"email_verified": False},
        "iss": {"iss": "https://evil.example"},
    }
    if case in claim_changes:
        return bearer(google_key.sign(google_claims(**claim_changes[case])))
    return {
        "none": {},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "garbage": bearer("not-a-jwt"),
        "unknown-key": bearer(other_key.sign(google_claims())),
        "forged": bearer(other_key.sign(google_claims(), key_id=google_key.key_id)),
    }[case]


@pytest.mark.integration
@pytest.mark.parametrize(("case", "reason"), INGRESS_REFUSALS.values(), ids=list(INGRESS_REFUSALS))
async def test_ingress_refuses_pushes_without_a_valid_token(
    http: httpx.AsyncClient,
    temporal_client: Client,
    authenticated_ingress: Ingress,
    google_key: SigningKey,
    other_key: SigningKey,
    case: str,
    reason: Reason,
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    request_id = str(uuid.uuid4())
    response = await http.post(
        authenticated_ingress.url,
        content=push_body(alice, bob),
        headers={
            "content-type": "application/json",
            "x-request-id": request_id,
            **refused_headers(case, google_key, other_key),
        },
    )

    assert response.status_code == 401
    assert response.json() == {"message": "Invalid push token", "detail": reason.category}
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert not await workflow_exists(
        temporal_client, workflow_id_for(alice.veraid_id, bob.veraid_id)
    )
    refusals = [
        (event["level"], event["reason"])
        for event in log_events(authenticated_ingress)
        if event.get("requestId") == request_id
        and event["event"] == "Refused Pub/Sub push with an invalid token"
    ]
    assert refusals == [("warning", reason.value)]


@pytest.mark.integration
async def test_ingress_checks_the_token_before_the_body(
    http: httpx.AsyncClient, authenticated_ingress: Ingress
) -> None:
    response = await http.post(authenticated_ingress.url, content=b"not a push envelope")
    assert response.status_code == 401  # not 400: an unauthenticated body is not even read


@pytest.mark.integration
async def test_ingress_accepts_a_push_with_a_valid_token(
    http: httpx.AsyncClient,
    temporal_client: Client,
    authenticated_ingress: Ingress,
    google_key: SigningKey,
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    workflow_id = workflow_id_for(alice.veraid_id, bob.veraid_id)
    headers = {"content-type": "application/json", **bearer(google_key.sign(google_claims()))}

    response = await http.post(
        authenticated_ingress.url, content=push_body(alice, bob), headers=headers
    )

    assert response.status_code == 204
    assert await workflow_exists(temporal_client, workflow_id)
    await temporal_client.get_workflow_handle(workflow_id).terminate("test over")
    assert any(
        event.get("event") == "Pub/Sub pushes are authenticated"
        and event.get("audience") == AUDIENCE
        for event in log_events(authenticated_ingress)
    )


@pytest.mark.integration
async def test_ingress_answers_503_when_the_certificates_cannot_be_fetched(
    http: httpx.AsyncClient,
    temporal_client: Client,
    start_ingress: StartIngress,
    google_key: SigningKey,
) -> None:
    ingress = _start(start_ingress, PUBSUB_PUSH_CERTS_URL=f"http://127.0.0.1:{free_port()}/certs")
    try:
        alice, bob = new_agent("alice"), new_agent("bob")
        response = await http.post(
            ingress.url,
            content=push_body(alice, bob),
            headers={
                "content-type": "application/json",
                **bearer(google_key.sign(google_claims())),
            },
        )
        assert response.status_code == 503  # Pub/Sub redelivers later
        assert response.json()["message"] == "Cannot authenticate the push now"
        assert not await workflow_exists(
            temporal_client, workflow_id_for(alice.veraid_id, bob.veraid_id)
        )
        assert any(
            event.get("event") == "Could not fetch the Pub/Sub push certificates"
            for event in log_events(ingress)
        )
    finally:
        ingress.process.stop()


@pytest.mark.integration
async def test_ingress_without_the_settings_warns_it_is_unauthenticated(
    http: httpx.AsyncClient, temporal_client: Client, start_ingress: StartIngress
) -> None:
    ingress = start_ingress(CE_TRANSPORT="google-pubsub", TEMPORAL_TASK_QUEUE=TASK_QUEUE)
    try:
        warnings = [
            event
            for event in log_events(ingress)
            if str(event.get("event", "")).startswith("Pub/Sub pushes are NOT authenticated")
        ]
        assert [event["level"] for event in warnings] == ["warning"]
        # As warned: a push without a token is accepted (the emulator's case).
        alice, bob = new_agent("alice"), new_agent("bob")
        workflow_id = workflow_id_for(alice.veraid_id, bob.veraid_id)
        response = await http.post(ingress.url, content=push_body(alice, bob))
        assert response.status_code == 204
        assert await workflow_exists(temporal_client, workflow_id)
        await temporal_client.get_workflow_handle(workflow_id).terminate("test over")
    finally:
        ingress.process.stop()
