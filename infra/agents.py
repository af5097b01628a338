"""Simulated Letro agents and organisations, building their messages as a real client would.

Everything is made with the project's own protocol libraries (``veraid``, ``awala``,
``letro``), so the bytes are what a Letro agent sends; the tests and the benchmarks both
drive the server with them:

* ``Agent``: a user of the legacy (CSV) pairing protocol, with made-up identity key bytes;
* ``VeraidOrg`` and ``VeraidAgent``: a mock VeraId organisation (its DNSSEC chain anchored
  in a throwaway root the worker and the ingress are configured to trust) and its members,
  who sign real ``contact-pairing.request`` bundles; the organisation can sign as a bot;
* ``connection_params``: Awala ``PrivateEndpointConnParams`` with a real PDA by which one
  endpoint authorises another, or a forged one (another signer, no authority key id);
* ``pss_request``: an account request signed as Letro for Android signs it (RSA-PSS).

RSA-2048 keys take 50-100 ms each to generate, so the organisation key and the member key
are made once per process and shared: only the Awala endpoint keys tell agents apart.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import algos as asn1_algos
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

import veraid
from awala.private_endpoint_conn_params import (
    _CertificationPath,
    _PrivateEndpointConnParams,
)
from letro.account_messages import serialise_account_request, serialise_account_request_signature
from letro.contact_pairing import LETRO_SERVICE_OID, serialise_contact_pairing_request

ORG_DOMAIN = "applepie.rocks"


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def _shared_key(index: int) -> rsa.RSAPrivateKey:
    # One key per role (0: the organisation, 1: every member), made once per process.
    return new_rsa_key()


def spki(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def endpoint_id(key: rsa.RSAPrivateKey) -> str:
    return "0" + hashlib.sha256(spki(key)).hexdigest()


# --- Legacy (CSV) pairing --------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    """A Letro user of legacy pairing: a VeraId user id, an Awala endpoint id and its key."""

    veraid_id: str
    endpoint_id: str
    id_key: bytes

    @classmethod
    def named(cls, user_name: str, domain: str = ORG_DOMAIN) -> Agent:
        """The agent ``user_name@domain``, always with the same key and endpoint id."""
        veraid_id = f"{user_name}@{domain}"
        # About the size of a DER-encoded RSA-2048 public key, so requests are realistic.
        # Legacy requests are not signed, so the key need not be a real one.
        key = hashlib.sha256(veraid_id.encode()).digest() * 9
        return cls(veraid_id, "0" + hashlib.sha256(key).hexdigest(), key)

    def legacy_pairing_request(self, contact: Agent) -> bytes:
        key = base64.b64encode(self.id_key).decode()
        return f"{self.veraid_id},{contact.veraid_id},{key}".encode()

    def expected_match_from(self, contact: Agent) -> bytes:
        """The match CSV this agent must receive once paired with ``contact``.

        Written out here rather than made with ``letro.legacy_pairing``, so that the
        server's serialiser is checked against an independent statement of the format.
        """
        key = base64.b64encode(contact.id_key).decode()
        return f"{self.veraid_id},{contact.veraid_id},{contact.endpoint_id},{key}".encode()


def new_agent(name: str, domain: str = ORG_DOMAIN) -> Agent:
    """A fresh agent; the random suffix keeps tests sharing one stack apart."""
    return Agent.named(f"{name}-{uuid.uuid4().hex[:10]}", domain)


# --- VeraId pairing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VeraidOrg:
    domain: str
    period: veraid.DatePeriod
    chain: veraid.MockChain
    certificate: bytes
    key: rsa.RSAPrivateKey

    @property
    def trust_anchor_setting(self) -> str:
        anchor = self.chain.trust_anchor
        return f"{anchor.key_tag} {anchor.algorithm} {anchor.digest_type} {anchor.digest.hex()}"

    def bot_request(self, agent: VeraidAgent, target: str) -> bytes:
        return veraid.sign_as_organisation(
            serialise_contact_pairing_request(spki(agent.endpoint_key), target),
            LETRO_SERVICE_OID,
            self.chain.responses,
            self.certificate,
            self.key,
            self.period.start,
            self.period.end,
            user_name=None,
            encapsulate=True,
        )


def make_org(domain: str = ORG_DOMAIN) -> VeraidOrg:
    now = datetime.now(UTC).replace(microsecond=0)
    period = veraid.DatePeriod(now - timedelta(hours=1), now + timedelta(days=1))
    key = _shared_key(0)
    txt = veraid.generate_txt_rdata(key.public_key(), timedelta(hours=1))
    chain = veraid.generate_mock_chain(domain, [txt], period)
    certificate = veraid.issue_organisation_certificate(domain, key, period.start, period.end)
    return VeraidOrg(domain, period, chain, certificate, key)


@dataclass(frozen=True)
class VeraidAgent:
    """A Letro user with a VeraId member certificate and an Awala endpoint (RSA key)."""

    org: VeraidOrg
    user_name: str
    endpoint_key: rsa.RSAPrivateKey

    @property
    def veraid_id(self) -> str:
        return f"{self.user_name}@{self.org.domain}"

    @property
    def endpoint_id(self) -> str:
        return endpoint_id(self.endpoint_key)

    def pairing_request(
        self,
        target: str,
        *,
        key_spki: bytes | None = None,
        plaintext: bytes | None = None,
        service_oid: str = LETRO_SERVICE_OID,
    ) -> bytes:
        member_key = _shared_key(1)
        member_certificate = veraid.issue_member_certificate(
            self.user_name,
            member_key.public_key(),
            self.org.certificate,
            self.org.key,
            self.org.period.start,
            self.org.period.end,
        )
        member_id_bundle = veraid.serialise_member_id_bundle(
            self.org.chain.responses, self.org.certificate, member_certificate
        )
        if plaintext is None:
            plaintext = serialise_contact_pairing_request(
                key_spki or spki(self.endpoint_key), target
            )
        return veraid.sign_as_member(
            plaintext,
            service_oid,
            member_id_bundle,
            member_key,
            self.org.period.start,
            self.org.period.end,
            encapsulate=True,
        )


def new_veraid_agent(org: VeraidOrg, name: str) -> VeraidAgent:
    return VeraidAgent(org, f"{name}-{uuid.uuid4().hex[:10]}", new_rsa_key())


# --- Awala connection parameters ---------------------------------------------------------------


def pss_padding() -> padding.PSS:
    """RSA-PSS as relaynet-core and awala-jvm sign certificates: MGF1-SHA-256, 32-octet salt."""
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def issue_certificate(
    subject_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    issuer_key: rsa.RSAPrivateKey,
    *,
    signer: rsa.RSAPrivateKey | None = None,
    authority_key_id: bool = True,
) -> bytes:
    """A DER certificate as relaynet-core issues them, signed by ``signer`` (the issuer)."""
    now = datetime.now(UTC)

    def name(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Name:
        digest = hashlib.sha256(spki(key)).hexdigest()
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "0" + digest[:63])])

    builder = (
        x509.CertificateBuilder()
        .subject_name(name(subject_key))
        .issuer_name(name(issuer_key))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
    )
    if authority_key_id:
        # As relaynet-core does: the key identifier is the SHA-256 of the issuer's SPKI,
        # which makes "0" + its hex the issuer's endpoint id.
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(hashlib.sha256(spki(issuer_key)).digest(), None, None),
            critical=False,
        )
    certificate = builder.sign(signer or issuer_key, hashes.SHA256(), rsa_padding=pss_padding())
    return certificate.public_bytes(Encoding.DER)


def assemble_connection_params(
    identity_key: bytes, pda: bytes, certificate_authorities: list[bytes]
) -> bytes:
    """``PrivateEndpointConnParams`` DER from an identity key SPKI and DER certificates."""
    path = _CertificationPath(
        {
            "leaf": asn1_x509.Certificate.load(pda),
            "certificate_authorities": [
                asn1_x509.Certificate.load(ca) for ca in certificate_authorities
            ],
        }
    )
    params = _PrivateEndpointConnParams(
        {
            "identity_key": asn1_keys.PublicKeyInfo.load(identity_key),
            "internet_gateway_address": "braavos.relaycorp.cloud",
            "delivery_auth": path,
        }
    )
    der: bytes = params.dump(force=True)
    return der


def connection_params(
    granter: rsa.RSAPrivateKey,
    grantee: rsa.RSAPrivateKey,
    *,
    identity_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
    signer: rsa.RSAPrivateKey | None = None,
    authority_key_id: bool = True,
) -> bytes:
    """``PrivateEndpointConnParams`` by which ``granter`` authorises ``grantee``.

    The PDA is issued by ``granter`` (its authority key identifier) and signed by it unless
    ``signer`` is given: a forgery by the signer. ``identity_key`` replaces the granter's.
    """
    pda = issue_certificate(grantee, granter, signer=signer, authority_key_id=authority_key_id)
    granter_certificate = issue_certificate(granter, granter)
    return assemble_connection_params(spki(identity_key or granter), pda, [granter_certificate])


# --- Account requests ----------------------------------------------------------------------------

_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def pss_spki(key: rsa.RSAPrivateKey, hash_name: str = "sha256", salt: int = 32) -> bytes:
    """An id-RSASSA-PSS SubjectPublicKeyInfo with parameters, as Letro for Android encodes it."""
    plain = asn1_keys.PublicKeyInfo.load(spki(key))
    params = asn1_algos.RSASSAPSSParams(
        {
            "hash_algorithm": {"algorithm": hash_name},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": hash_name}},
            "salt_length": salt,
            "trailer_field": 1,
        }
    )
    info = asn1_keys.PublicKeyInfo(
        {
            "algorithm": asn1_keys.PublicKeyAlgorithm(
                {"algorithm": "rsassa_pss", "parameters": params}
            ),
            "public_key": plain["public_key"].copy(),
        }
    )
    encoded: bytes = info.dump()
    return encoded


Signer = Callable[[bytes], bytes]


def pss_signer(key: rsa.RSAPrivateKey, hash_name: str = "sha256", salt: int = 32) -> Signer:
    h = _HASHES[hash_name]
    return lambda data: key.sign(data, padding.PSS(padding.MGF1(h()), salt), h())


def build_request(user_name: str, locale: str, public_key_der: bytes, sign: Signer) -> bytes:
    request = serialise_account_request(user_name, locale, public_key_der)
    return serialise_account_request_signature(request, sign(request))


def pss_request(
    user_name: str, locale: str = "en-us", key: rsa.RSAPrivateKey | None = None
) -> tuple[bytes, rsa.RSAPrivateKey]:
    """A request like Letro for Android's: RSA-2048, RSA-PSS SPKI with SHA-256 parameters."""
    key = key or new_rsa_key()
    return build_request(user_name, locale, pss_spki(key), pss_signer(key)), key
