"""A development stand-in for the VeraId Authority: ``python -m infra.dev_authority``.

It implements the part of the Authority's HTTP API that account creation uses (members,
their public keys and member id bundles), with the Authority's status codes and problem
types, and issues real MemberIdBundles: each organisation has its own RSA key and
certificate, under a mock DNSSEC chain made with :mod:`veraid` whose root is this process's
own key. Verify its bundles with ``trust_anchors=[authority.trust_anchor]``.

State lives in memory. Tests inject faults through ``POST /_dev/faults`` and read the members
through ``GET /_dev/members``; the benchmarks count the calls made to the API through
``GET /_dev/calls``. None of these exists in the real Authority.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import secrets
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from quart import Quart, Response, request

import veraid

PROBLEM_PREFIX = "https://veraid.net/problems/"
_CERTIFICATE_LIFETIME = timedelta(days=90)
# Operations faults can be injected into, named after the client's methods.
OPERATIONS = ("create_member", "import_public_key", "get_member_bundle", "delete_member")


@dataclass
class _Organisation:
    name: str
    private_key: rsa.RSAPrivateKey
    certificate: bytes
    chain: veraid.MockChain


@dataclass
class _PublicKey:
    key_id: str
    spki: bytes
    service_oid: str


@dataclass
class _Member:
    member_id: str
    organisation: str
    name: str | None
    role: str
    email: str | None
    public_keys: dict[str, _PublicKey] = field(default_factory=dict)


@dataclass
class _Fault:
    statuses: list[int]  # answered in order, one per request, before behaving normally
    always: int | None = None  # then this one forever, if set


class DevAuthority:
    """The Authority's state: organisations, members and their keys, and pending faults."""

    def __init__(self, domains: Iterable[str], token: str, *, key_dir: Path | None = None) -> None:
        """``key_dir``, if given, keeps the keys across restarts, so the trust anchor (the
        root key's DS) and the organisation keys stay the same for agents set up earlier."""
        self.token = token
        self._key_dir = key_dir
        now = datetime.now(UTC).replace(microsecond=0)
        self._period = veraid.DatePeriod(now - timedelta(hours=1), now + _CERTIFICATE_LIFETIME)
        self._root_key = self._key("root")
        self._zone_keys: dict[str, rsa.RSAPrivateKey] = {}
        self.organisations: dict[str, _Organisation] = {}
        self.members: dict[str, _Member] = {}
        self.faults: dict[tuple[str, str | None], _Fault] = {}
        self.requests: list[tuple[str, str]] = []  # (operation, member name) for each call
        # Every API request by operation, refused ones too ("unrouted": no such route).
        self.calls: Counter[str] = Counter()
        anchor = None
        for domain in domains:
            organisation = self._make_organisation(domain.lower())
            self.organisations[organisation.name] = organisation
            anchor = organisation.chain.trust_anchor
        if anchor is None:
            raise ValueError("The development authority needs at least one domain")
        self.trust_anchor: veraid.TrustAnchor = anchor

    def _key(self, name: str) -> rsa.RSAPrivateKey:
        if self._key_dir is None:
            return _rsa_key()
        path = self._key_dir / f"{name}.pem"
        if path.is_file():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise TypeError(f"{path} does not hold an RSA key")
            return key
        key = _rsa_key()
        self._key_dir.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
        path.chmod(0o600)
        return key

    def _make_organisation(self, domain: str) -> _Organisation:
        key = self._key(f"org-{domain}")
        certificate = veraid.issue_organisation_certificate(
            domain, key, self._period.start, self._period.end
        )
        txt = veraid.generate_txt_rdata(key.public_key(), timedelta(hours=1))
        labels = domain.rstrip(".").split(".")
        # One key per zone, shared by every organisation in it, so all chains meet at the root.
        zone_keys = [self._root_key] + [
            self._zone_key(".".join(labels[-depth:])) for depth in range(1, len(labels) + 1)
        ]
        chain = veraid.generate_mock_chain(domain, [txt], self._period, zone_keys)
        return _Organisation(domain, key, certificate, chain)

    def _zone_key(self, zone: str) -> rsa.RSAPrivateKey:
        if zone not in self._zone_keys:
            self._zone_keys[zone] = self._key(f"zone-{zone}")
        return self._zone_keys[zone]

    def inject(
        self, operation: str, name: str | None, statuses: Sequence[int], always: int | None
    ) -> None:
        self.faults[(operation, name)] = _Fault(list(statuses), always)

    def take_fault(self, operation: str, name: str | None) -> int | None:
        """The status to answer instead of serving the request, if a fault matches: faults
        are registered for a name prefix (so they also catch suffixed retries) or for all."""
        self.requests.append((operation, name or ""))
        for (fault_operation, prefix), fault in self.faults.items():
            if fault_operation != operation:
                continue
            if prefix is not None and not (name or "").startswith(prefix):
                continue
            if fault.statuses:
                return fault.statuses.pop(0)
            if fault.always is not None:
                return fault.always
        return None

    def member_bundle(self, member: _Member, key: _PublicKey) -> bytes:
        organisation = self.organisations[member.organisation]
        public_key = serialization.load_der_public_key(key.spki)
        if not isinstance(public_key, rsa.RSAPublicKey):  # checked when imported: a bug
            raise TypeError("A member key that is not RSA was imported")
        now = datetime.now(UTC)
        certificate = veraid.issue_member_certificate(
            member.name,
            public_key,
            organisation.certificate,
            organisation.private_key,
            now - timedelta(minutes=5),
            now + _CERTIFICATE_LIFETIME,
        )
        return veraid.serialise_member_id_bundle(
            organisation.chain.responses, organisation.certificate, certificate
        )


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _problem(status: int, problem: str) -> Response:
    return Response(f'{{"type": "{PROBLEM_PREFIX}{problem}"}}', status, mimetype="application/json")


def create_dev_authority_app(authority: DevAuthority) -> Quart:
    app = Quart(__name__)

    def authorised() -> bool:
        header = request.headers.get("Authorization", "")
        return hmac.compare_digest(header.encode(), f"Bearer {authority.token}".encode())

    def fault_response(operation: str, name: str | None) -> Response | None:
        status = authority.take_fault(operation, name)
        if status is None:
            return None
        problem = "existing-member-name" if status == 409 else "injected-fault"
        return _problem(status, problem)

    def find_member(org: str, member_id: str) -> _Member | None:
        member = authority.members.get(member_id)
        if member is None or member.organisation != org:
            return None
        return member

    @app.before_request
    async def check_token() -> Response | None:
        if request.path.startswith("/_dev/"):
            return None
        authority.calls[request.endpoint or "unrouted"] += 1
        if not authorised():
            return Response('{"message": "Unauthorised"}', 401, mimetype="application/json")
        return None

    @app.post("/orgs/<org>/members")
    async def create_member(org: str) -> Response | dict[str, Any]:
        body = await request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("role") not in ("ORG_ADMIN", "REGULAR"):
            return _problem(400, "malformed-member")
        name = body.get("name")
        if fault := fault_response("create_member", name):
            return fault
        if org not in authority.organisations:
            return _problem(404, "org-not-found")
        if name is not None:
            if not isinstance(name, str) or not name:
                return _problem(400, "malformed-member-name")
            try:
                veraid.validate_user_name(name)
            except veraid.InvalidNameError:
                return _problem(400, "malformed-member-name")
            taken = any(
                m.organisation == org and m.name == name for m in authority.members.values()
            )
            if taken:
                return _problem(409, "existing-member-name")
        member_id = secrets.token_hex(12)  # like a MongoDB ObjectId
        authority.members[member_id] = _Member(
            member_id, org, name, body["role"], body.get("email")
        )
        path = f"/orgs/{org}/members/{member_id}"
        return {
            "self": path,
            "publicKeys": f"{path}/public-keys",
            "publicKeyImportTokens": f"{path}/public-key-import-tokens",
            "signatureSpecs": f"{path}/signature-specs",
        }

    @app.delete("/orgs/<org>/members/<member_id>")
    async def delete_member(org: str, member_id: str) -> Response:
        member = find_member(org, member_id)
        if fault := fault_response("delete_member", member.name if member else None):
            return fault
        if member is None:
            return _problem(404, "member-not-found")
        del authority.members[member_id]
        return Response("", 204)

    @app.post("/orgs/<org>/members/<member_id>/public-keys")
    async def import_public_key(org: str, member_id: str) -> Response | dict[str, Any]:
        member = find_member(org, member_id)
        if fault := fault_response("import_public_key", member.name if member else None):
            return fault
        if member is None:
            return _problem(404, "member-not-found")
        body = await request.get_json(silent=True)
        if not isinstance(body, dict):
            return _problem(400, "malformed-public-key")
        service_oid = body.get("serviceOid")
        try:
            spki = base64.b64decode(body.get("publicKey", ""), validate=True)
            key = serialization.load_der_public_key(spki)
        except (ValueError, TypeError):
            return _problem(400, "malformed-public-key")
        # VeraId member certificates hold RSA keys only (veraid refuses any other), so an
        # Ed25519 key is as unusable here as a malformed one.
        if not isinstance(key, rsa.RSAPublicKey) or not isinstance(service_oid, str):
            return _problem(400, "malformed-public-key")
        key_id = secrets.token_hex(12)
        member.public_keys[key_id] = _PublicKey(key_id, spki, service_oid)
        path = f"/orgs/{org}/members/{member_id}/public-keys/{key_id}"
        return {"self": path, "bundle": f"{path}/bundle"}

    @app.get("/orgs/<org>/members/<member_id>/public-keys/<key_id>/bundle")
    async def get_member_bundle(org: str, member_id: str, key_id: str) -> Response:
        member = find_member(org, member_id)
        if fault := fault_response("get_member_bundle", member.name if member else None):
            return fault
        if member is None:
            return _problem(404, "member-not-found")
        key = member.public_keys.get(key_id)
        if key is None:
            return _problem(404, "public-key-not-found")
        bundle = await asyncio.to_thread(authority.member_bundle, member, key)
        return Response(bundle, 200, mimetype="application/vnd.veraid.member-bundle")

    # --- Development only -----------------------------------------------------------------

    @app.post("/_dev/faults")
    async def inject_fault() -> Response:
        body = await request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("operation") not in OPERATIONS:
            return Response("operation must be one of " + ", ".join(OPERATIONS), 400)
        authority.inject(
            body["operation"], body.get("name"), body.get("statuses", []), body.get("always")
        )
        return Response("", 204)

    @app.delete("/_dev/faults")
    async def clear_faults() -> Response:
        authority.faults.clear()
        return Response("", 204)

    @app.get("/_dev/members")
    async def list_members() -> dict[str, Any]:
        return {
            "members": [
                {
                    "id": member.member_id,
                    "org": member.organisation,
                    "name": member.name,
                    "publicKeys": len(member.public_keys),
                }
                for member in authority.members.values()
            ]
        }

    @app.get("/_dev/calls")
    async def list_calls() -> dict[str, Any]:
        return {"calls": dict(authority.calls)}

    @app.get("/_dev/trust-anchor")
    async def trust_anchor() -> dict[str, Any]:
        anchor = authority.trust_anchor
        return {
            "keyTag": anchor.key_tag,
            "algorithm": anchor.algorithm,
            "digestType": anchor.digest_type,
            "digest": anchor.digest.hex().upper(),
            "ds": trust_anchor_text(anchor),
        }

    return app


def trust_anchor_text(anchor: veraid.TrustAnchor) -> str:
    """The root DS record, as a zone file would show it."""
    return f". IN DS {ds_rdata(anchor)}"


def ds_rdata(anchor: veraid.TrustAnchor) -> str:
    """The DS record's data, as ``VERAID_TRUST_ANCHORS`` takes it."""
    return f"{anchor.key_tag} {anchor.algorithm} {anchor.digest_type} {anchor.digest.hex()}"


def trust_anchor_from_json(body: object) -> veraid.TrustAnchor:
    """The anchor from the body of ``GET /_dev/trust-anchor``; ValueError if it is not one."""
    if not isinstance(body, dict):
        raise ValueError("The trust anchor is not a JSON object")
    try:
        fields = [body["keyTag"], body["algorithm"], body["digestType"]]
        digest = bytes.fromhex(body["digest"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"Malformed trust anchor ({type(error).__name__}: {error})") from None
    if not all(isinstance(field, int) for field in fields):
        raise ValueError("Malformed trust anchor (non-integer fields)")
    return veraid.TrustAnchor(fields[0], fields[1], fields[2], digest)


def main() -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from letro.account_names import DEFAULT_DOMAINS_BY_LOCALE, DEFAULT_FALLBACK_DOMAIN

    default_domains = sorted({*DEFAULT_DOMAINS_BY_LOCALE.values(), DEFAULT_FALLBACK_DOMAIN})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--token", default="dev-authority-token")
    parser.add_argument("--domains", default=",".join(default_domains))
    parser.add_argument("--key-dir", type=Path, help="keep the keys here across restarts")
    args = parser.parse_args()
    authority = DevAuthority(args.domains.split(","), args.token, key_dir=args.key_dir)
    anchor = trust_anchor_text(authority.trust_anchor)
    if args.key_dir is not None:
        (args.key_dir / "trust-anchor.txt").write_text(anchor + "\n")
    print(f"Development VeraId Authority trust anchor: {anchor}", file=sys.stderr, flush=True)
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = "-"
    asyncio.run(serve(create_dev_authority_app(authority), config, mode="asgi"))


if __name__ == "__main__":
    main()


class DevAuthorityServer:
    """Serves a :class:`DevAuthority` in this event loop; can be stopped and started again on
    the same port with the same state, to simulate an outage."""

    def __init__(self, authority: DevAuthority, port: int) -> None:
        self.authority = authority
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = None
        config.errorlog = None
        self._stop = asyncio.Event()
        app = create_dev_authority_app(self.authority)
        self._task = asyncio.create_task(
            serve(app, config, shutdown_trigger=self._stop.wait, mode="asgi")
        )
        # Ready once it accepts connections.
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise RuntimeError("The development authority did not start")

    async def stop(self) -> None:
        if self._stop is not None and self._task is not None:
            self._stop.set()
            await self._task
            self._stop = self._task = None
