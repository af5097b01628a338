"""The VeraId Authority client against the development authority (a real HTTP server)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

import veraid
from activities.accounts import (
    AuthorityInvalidResponse,
    AuthorityNotFound,
    AuthorityRefused,
    AuthorityUnauthorised,
    AuthorityUnavailable,
    MemberNameTaken,
)
from activities.veraid_authority import AuthorityClient, GoogleIdToken, StaticToken
from infra.dev_authority import DevAuthority, DevAuthorityServer
from infra.services import free_port
from tests.account_helpers import SERVICE_OID, bundle_member_key_matches, pss_spki, spki
from tests.conftest import DEV_AUTHORITY_TOKEN


def _client(server: DevAuthorityServer, token: str = DEV_AUTHORITY_TOKEN) -> AuthorityClient:
    return AuthorityClient(server.url + "/", StaticToken(token), timeout=5)


def _name() -> str:
    return "client-" + uuid.uuid4().hex[:8]


async def _inject(server: DevAuthorityServer, **fault: object) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{server.url}/_dev/faults", json=fault)
        assert response.status_code == 204


async def test_member_key_and_bundle(dev_authority: DevAuthorityServer) -> None:
    client = _client(dev_authority)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name()
    member = await client.create_member("cuppa.fans", name)
    assert member.self_path.startswith("/orgs/cuppa.fans/members/")
    key_paths = await client.import_public_key(member.public_keys_path, pss_spki(key), SERVICE_OID)
    bundle = await client.get_member_bundle(key_paths.bundle_path)
    result = veraid.verify_member_id_bundle(
        bundle,
        SERVICE_OID,
        datetime.now(UTC),
        trust_anchors=[dev_authority.authority.trust_anchor],
    )
    assert str(result.member) == f"{name}@cuppa.fans"
    assert bundle_member_key_matches(bundle, pss_spki(key))
    await client.delete_member(member.self_path)
    with pytest.raises(AuthorityNotFound):
        await client.delete_member(member.self_path)
    await client.close()


async def test_non_rsa_member_keys_are_imported_then_their_bundle_fails(
    dev_authority: DevAuthorityServer,
) -> None:
    # As the real Authority: any key type is imported, then the bundle is a 500 for ever
    # (it reads the key as RSA-PSS). Letro refuses such requests before calling it.
    client = _client(dev_authority)
    key = ed25519.Ed25519PrivateKey.generate()
    member = await client.create_member("nautilus.ink", _name())
    key_paths = await client.import_public_key(member.public_keys_path, spki(key), SERVICE_OID)
    for _ in range(2):
        with pytest.raises(AuthorityUnavailable, match="HTTP 500"):
            await client.get_member_bundle(key_paths.bundle_path)
    await client.close()


async def test_errors_map_to_types(dev_authority: DevAuthorityServer) -> None:
    client = _client(dev_authority)
    name = _name()
    await client.create_member("applepie.rocks", name)
    with pytest.raises(MemberNameTaken) as taken:
        await client.create_member("applepie.rocks", name)
    assert taken.value.status == 409
    assert taken.value.problem == "https://veraid.net/problems/existing-member-name"
    with pytest.raises(AuthorityRefused) as malformed:
        await client.create_member("applepie.rocks", "tab\there")
    assert malformed.value.problem == "https://veraid.net/problems/malformed-member-name"
    await _inject(dev_authority, operation="create_member", name=name + "x", statuses=[500])
    with pytest.raises(AuthorityUnavailable):
        await client.create_member("applepie.rocks", name + "x")
    await client.create_member("applepie.rocks", name + "x")  # the fault was for one request
    await client.close()

    intruder = _client(dev_authority, token="wrong")
    with pytest.raises(AuthorityUnauthorised) as unauthorised:
        await intruder.create_member("applepie.rocks", _name())
    assert unauthorised.value.status == 401
    assert "Authorization token is invalid" in str(unauthorised.value)  # Fastify's message
    await intruder.close()


async def test_unknown_organisation_fails_only_at_the_bundle(
    dev_authority: DevAuthorityServer,
) -> None:
    client = _client(dev_authority)
    member = await client.create_member("not-ours.example", _name())  # not checked here
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_paths = await client.import_public_key(member.public_keys_path, pss_spki(key), SERVICE_OID)
    with pytest.raises(AuthorityNotFound) as not_found:
        await client.get_member_bundle(key_paths.bundle_path)
    assert (not_found.value.status, not_found.value.problem) == (404, None)  # no body
    await client.delete_member(member.self_path)
    await client.close()


async def _raw(
    server: DevAuthorityServer, method: str, path: str, **kwargs: object
) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.request(method, server.url + path, **kwargs)  # type: ignore[arg-type]


async def test_error_bodies_are_the_real_authoritys(dev_authority: DevAuthorityServer) -> None:
    auth = {"Authorization": f"Bearer {DEV_AUTHORITY_TOKEN}"}
    schema = await _raw(
        dev_authority, "POST", "/orgs/cuppa.fans/members", json={"role": "regular"}, headers=auth
    )
    assert schema.status_code == 400
    assert set(schema.json()) == {"statusCode", "code", "error", "message"}  # no "type"
    assert schema.json()["code"] == "FST_ERR_VALIDATION"
    anonymous = await _raw(dev_authority, "POST", "/orgs/cuppa.fans/members", json={})
    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"statusCode", "error", "message"}
    name = _name()
    await _inject(dev_authority, operation="create_member", name=name, statuses=[403])
    forbidden = await _raw(
        dev_authority,
        "POST",
        "/orgs/cuppa.fans/members",
        json={"name": name, "role": "REGULAR"},
        headers=auth,
    )
    assert (forbidden.status_code, forbidden.content) == (403, b"")
    unknown = await _raw(
        dev_authority, "GET", "/orgs/cuppa.fans/members/1/public-keys/2/bundle", headers=auth
    )
    assert (unknown.status_code, unknown.content) == (404, b"")


async def test_bodiless_errors_map_to_types(dev_authority: DevAuthorityServer) -> None:
    client = _client(dev_authority)
    name = _name()
    member = await client.create_member("cuppa.fans", name)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_paths = await client.import_public_key(member.public_keys_path, pss_spki(key), SERVICE_OID)
    await _inject(dev_authority, kind="no-dnssec-chain", name=name, count=1)
    with pytest.raises(AuthorityUnavailable, match="HTTP 503"):
        await client.get_member_bundle(key_paths.bundle_path)
    await client.get_member_bundle(key_paths.bundle_path)  # the chain is back
    await _inject(dev_authority, operation="delete_member", name=name, statuses=[403])
    with pytest.raises(AuthorityUnauthorised) as forbidden:
        await client.delete_member(member.self_path)
    assert forbidden.value.status == 403
    await client.close()


async def test_dropped_response_after_the_member_is_created(
    dev_authority: DevAuthorityServer,
) -> None:
    client = _client(dev_authority)
    name = _name()
    await _inject(dev_authority, operation="create_member", name=name, kind="drop-response")
    with pytest.raises(AuthorityUnavailable, match="RemoteProtocolError"):
        await client.create_member("cuppa.fans", name)
    # It was created all the same: the retry meets the name taken.
    assert [m.name for m in dev_authority.authority.members.values()].count(name) == 1
    with pytest.raises(MemberNameTaken):
        await client.create_member("cuppa.fans", name)
    await client.close()


async def _calls(server: DevAuthorityServer) -> dict[str, int]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server.url}/_dev/calls")
    calls: dict[str, int] = response.json()["calls"]
    return calls


async def test_dev_authority_counts_every_api_call(dev_authority: DevAuthorityServer) -> None:
    # The session's authority is shared, so only what this test adds is compared.
    before = await _calls(dev_authority)
    client = _client(dev_authority)
    member = await client.create_member("cuppa.fans", _name())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await client.import_public_key(member.public_keys_path, pss_spki(key), SERVICE_OID)
    await client.close()
    intruder = _client(dev_authority, token="wrong")
    with pytest.raises(AuthorityUnauthorised):
        await intruder.create_member("cuppa.fans", _name())  # refused, but still a call
    await intruder.close()
    await _inject(dev_authority, operation="create_member", name="nobody", statuses=[500])

    after = await _calls(dev_authority)
    added = {op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)}
    assert added == {"create_member": 2, "import_public_key": 1}  # /_dev/ is not counted


async def test_unreachable_authority_is_unavailable() -> None:
    client = AuthorityClient(f"http://127.0.0.1:{free_port()}", StaticToken("t"), timeout=2)
    with pytest.raises(AuthorityUnavailable):
        await client.create_member("applepie.rocks", "alice")
    await client.close()


async def test_responses_not_matching_the_api_are_invalid() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"self": "no-slash", "publicKeys": "/x"})
        return httpx.Response(200, content=b"x", headers={"content-type": "text/plain"})

    client = AuthorityClient(
        "http://authority.test", StaticToken("t"), transport=httpx.MockTransport(handler)
    )
    with pytest.raises(AuthorityInvalidResponse):
        await client.create_member("applepie.rocks", "alice")
    with pytest.raises(AuthorityInvalidResponse):
        await client.get_member_bundle("/orgs/a/members/b/public-keys/c/bundle")
    await client.close()


async def test_requests_carry_the_token_and_documented_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"self": "/orgs/o/members/1", "publicKeys": "/k"})

    client = AuthorityClient(
        "http://authority.test/", StaticToken("sekret"), transport=httpx.MockTransport(handler)
    )
    await client.create_member("o", "alice")
    await client.close()
    assert str(seen[0].url) == "http://authority.test/orgs/o/members"
    assert seen[0].headers["authorization"] == "Bearer sekret"
    assert seen[0].read() == b'{"name":"alice","role":"REGULAR"}'


def test_dev_authority_keeps_its_keys_in_key_dir(tmp_path: Path) -> None:
    first = DevAuthority(["applepie.rocks"], "t", key_dir=tmp_path)
    again = DevAuthority(["applepie.rocks"], "t", key_dir=tmp_path)
    other = DevAuthority(["applepie.rocks"], "t")
    assert first.trust_anchor == again.trust_anchor != other.trust_anchor
    assert (tmp_path / "root.pem").stat().st_mode & 0o777 == 0o600


class _CountingIdToken(GoogleIdToken):
    def __init__(self, fail: bool = False) -> None:
        super().__init__("https://authority.example")
        self.fetches = 0
        self._fail = fail

    def _fetch(self) -> str:
        self.fetches += 1
        if self._fail:
            raise OSError("metadata server unreachable")
        return f"id-token-{self.fetches}"


async def test_google_id_tokens_are_cached() -> None:
    tokens = _CountingIdToken()
    assert [await tokens.token() for _ in range(3)] == ["id-token-1"] * 3
    assert tokens.fetches == 1


async def test_google_id_token_failure_is_transient() -> None:
    with pytest.raises(AuthorityUnavailable, match="Google ID token"):
        await _CountingIdToken(fail=True).token()
