"""A development stand-in for the VeraId Authority: ``python -m infra.dev_authority``.

It implements the part of the Authority's HTTP API that account creation uses (members,
their public keys and member id bundles), answering as the real Authority does
(``relaycorp/veraid-authority``, as observed: /work/shared/reference/veraid-authority-observed.md
summarises it, the README's "Account creation" lists what Letro sees), and issues real
MemberIdBundles: each organisation has its own RSA key and certificate, under a mock DNSSEC
chain made with :mod:`veraid` whose root is this process's own key. Verify its bundles with
``trust_anchors=[authority.trust_anchor]``.

Where the real Authority answers oddly, so does this one: a member is created, and a key
imported, for an organisation it does not have, whose bundle is then a bodiless 404; any key
type is imported, and the bundle of a key that is not RSA is a 500; schema errors are Fastify
validation bodies, 401 a Fastify error body, 403 and bundle 404/503 have no body.

State lives in memory. Tests inject faults through ``POST /_dev/faults`` and read the members
through ``GET /_dev/members``; the benchmarks count the calls made to the API through
``GET /_dev/calls``. None of these exists in the real Authority.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import json
import secrets
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
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
    # Requests to serve (the member is created...) and then answer with a broken response,
    # as if the connection dropped: the client cannot know what happened.
    drop_responses: int = 0


# Fault kinds of ``POST /_dev/faults``, besides plain statuses.
DROP_RESPONSE = "drop-response"  # serve the request, then break the response
NO_DNSSEC_CHAIN = "no-dnssec-chain"  # the bundle's chain cannot be retrieved: bodiless 503


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
        self.stray_keys: dict[str, _PublicKey] = {}  # imported for members that do not exist
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
        self,
        operation: str,
        name: str | None,
        statuses: Sequence[int],
        always: int | None,
        drop_responses: int = 0,
    ) -> None:
        self.faults[(operation, name)] = _Fault(list(statuses), always, drop_responses)

    def _matching(self, operation: str, name: str | None) -> Iterable[_Fault]:
        # Faults are registered for a name prefix (so they also catch suffixed retries) or
        # for every name.
        for (fault_operation, prefix), fault in self.faults.items():
            if fault_operation == operation and (prefix is None or (name or "").startswith(prefix)):
                yield fault

    def take_fault(self, operation: str, name: str | None) -> int | None:
        """The status to answer instead of serving the request, if a fault matches."""
        self.requests.append((operation, name or ""))
        for fault in self._matching(operation, name):
            if fault.statuses:
                return fault.statuses.pop(0)
            if fault.always is not None:
                return fault.always
        return None

    def take_dropped_response(self, operation: str, name: str | None) -> bool:
        """Whether to break the response of this request, once it has been served."""
        for fault in self._matching(operation, name):
            if fault.drop_responses:
                fault.drop_responses -= 1
                return True
        return False

    def find_key(self, key_id: str) -> tuple[_Member, _PublicKey] | None:
        # The real Authority finds a bundle's key by its id alone, whatever the path says.
        for member in self.members.values():
            if key_id in member.public_keys:
                return member, member.public_keys[key_id]
        return None

    def member_bundle(self, member: _Member, key: _PublicKey) -> bytes:
        """The bundle; KeyError for an unknown organisation, NotRsaKey for another key type."""
        organisation = self.organisations[member.organisation]
        public_key = serialization.load_der_public_key(key.spki)
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise NotRsaKey("Too big integer")  # what the real one says, reading it as RSA
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


class NotRsaKey(Exception):
    """A member key that is not RSA: the real Authority imports it, then cannot use it."""


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status, mimetype="application/json")


def _problem(status: int, problem: str) -> Response:
    """One of the Authority's own problems: the only bodies that carry a ``type``."""
    return _json(status, {"type": f"{PROBLEM_PREFIX}{problem}"})


def _fastify_error(status: int, message: str) -> Response:
    """Fastify's error body (401, 500): no ``type``."""
    return _json(
        status, {"statusCode": status, "error": HTTPStatus(status).phrase, "message": message}
    )


def _validation_error(message: str) -> Response:
    """A body that fails the route's JSON schema: Fastify's validation error, no ``type``."""
    return _json(
        400,
        {
            "statusCode": 400,
            "code": "FST_ERR_VALIDATION",
            "error": "Bad Request",
            "message": message,
        },
    )


def _empty(status: int) -> Response:
    return Response("", status)


def _injected(status: int) -> Response:
    """An injected status, with the body the real Authority sends with it."""
    if status == 409:
        return _problem(409, "existing-member-name")
    if status == 400:
        return _validation_error("body must have required property 'name'")
    if status in (401, 500):
        return _fastify_error(status, "Injected fault")
    return _empty(status)  # 403, bundle 404 and 503, and anything else: no body


class _DroppedResponse:
    """A 200 whose body breaks off: the request was served, the client never learns it."""

    def __init__(self) -> None:
        self._sent = False

    def __aiter__(self) -> _DroppedResponse:
        return self

    async def __anext__(self) -> bytes:
        if self._sent:
            raise ConnectionAbortedError("Response dropped (injected fault)")
        self._sent = True
        return b'{"self": '


def _dropped_response() -> Response:
    response = Response(_DroppedResponse(), 200, mimetype="application/json")
    response.headers["Content-Length"] = "1024"  # more than will come
    return response


def create_dev_authority_app(authority: DevAuthority) -> Quart:
    app = Quart(__name__)

    def authorised() -> bool:
        header = request.headers.get("Authorization", "")
        return hmac.compare_digest(header.encode(), f"Bearer {authority.token}".encode())

    def fault_response(operation: str, name: str | None) -> Response | None:
        status = authority.take_fault(operation, name)
        return None if status is None else _injected(status)

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
        if not request.headers.get("Authorization"):
            return _fastify_error(401, "No authorization header was found")
        if not authorised():
            # The real one tells a bad token (401) from a good one without the rights (403);
            # with one static token here, a wrong token is a 401 as an expired JWT would be.
            return _fastify_error(401, "Authorization token is invalid")
        return None

    @app.post("/orgs/<org>/members")
    async def create_member(org: str) -> Response | dict[str, Any]:
        body = await request.get_json(silent=True)
        if not isinstance(body, dict):
            return _validation_error("body must be object")
        if body.get("role") not in ("ORG_ADMIN", "REGULAR"):
            return _validation_error("body/role must be equal to one of the allowed values")
        name = body.get("name")
        if fault := fault_response("create_member", name):
            return fault
        # The organisation is not checked: the real Authority creates the member anyway.
        if name is not None:
            if not isinstance(name, str):
                return _validation_error("body/name must be string")
            if name:  # an empty name is accepted, as by the real one
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
        if authority.take_dropped_response("create_member", name):
            return _dropped_response()
        path = f"/orgs/{org}/members/{member_id}"
        return {
            "self": path,
            "publicKeys": f"{path}/public-keys",
            "publicKeyImportTokens": f"{path}/public-key-import-tokens",
            "workloadIdentities": f"{path}/workload-identities",
        }

    @app.delete("/orgs/<org>/members/<member_id>")
    async def delete_member(org: str, member_id: str) -> Response:
        member = find_member(org, member_id)
        if fault := fault_response("delete_member", member.name if member else None):
            return fault
        if member is None:
            return _problem(404, "member-not-found")
        del authority.members[member_id]
        return _empty(204)

    @app.post("/orgs/<org>/members/<member_id>/public-keys")
    async def import_public_key(org: str, member_id: str) -> Response | dict[str, Any]:
        member = find_member(org, member_id)
        if fault := fault_response("import_public_key", member.name if member else None):
            return fault
        body = await request.get_json(silent=True)
        if not isinstance(body, dict):
            return _validation_error("body must be object")
        public_key, service_oid = body.get("publicKey"), body.get("serviceOid")
        if not isinstance(public_key, str) or not isinstance(service_oid, str):
            return _validation_error("body must have required property 'publicKey'")
        try:
            spki = base64.b64decode(public_key, validate=True)
            serialization.load_der_public_key(spki)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            return _problem(400, "malformed-public-key")
        # Any key type is taken (the bundle request fails later for one that is not RSA),
        # and so is a member id that does not exist: the key is then stored with no member.
        key_id = secrets.token_hex(12)
        key = _PublicKey(key_id, spki, service_oid)
        if member is None:
            authority.stray_keys[key_id] = key  # its bundle is a 404
        else:
            member.public_keys[key_id] = key
        path = f"/orgs/{org}/members/{member_id}/public-keys/{key_id}"
        return {"self": path, "bundle": f"{path}/bundle"}

    @app.get("/orgs/<org>/members/<member_id>/public-keys/<key_id>/bundle")
    async def get_member_bundle(org: str, member_id: str, key_id: str) -> Response:
        found = authority.find_key(key_id)
        name = found[0].name if found else None
        if fault := fault_response("get_member_bundle", name):
            return fault
        if found is None:
            return _empty(404)
        try:
            bundle = await asyncio.to_thread(authority.member_bundle, *found)
        except KeyError:  # no such organisation
            return _empty(404)
        except NotRsaKey as error:
            return _fastify_error(500, str(error))
        return Response(bundle, 200, mimetype="application/vnd.veraid.member-bundle")

    # --- Development only -----------------------------------------------------------------

    @app.post("/_dev/faults")
    async def inject_fault() -> Response:
        body = await request.get_json(silent=True)
        if not isinstance(body, dict):
            return Response("a JSON object is required", 400)
        kind = body.get("kind", "status")
        if kind == NO_DNSSEC_CHAIN:  # a bodiless 503, as the real one answers then
            body = {**body, "operation": "get_member_bundle"}
            body["statuses"] = [503] * int(body.get("count", 0))
            body["always"] = 503 if body.get("always") else None
        if body.get("operation") not in OPERATIONS:
            return Response("operation must be one of " + ", ".join(OPERATIONS), 400)
        if kind not in ("status", DROP_RESPONSE, NO_DNSSEC_CHAIN):
            return Response(f"kind must be status, {DROP_RESPONSE} or {NO_DNSSEC_CHAIN}", 400)
        drop = int(body.get("count", 1)) if kind == DROP_RESPONSE else 0
        authority.inject(
            body["operation"],
            body.get("name"),
            body.get("statuses", []),
            body.get("always"),
            drop_responses=drop,
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
