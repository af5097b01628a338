"""Python-made VeraId material for the veraid tests: keys, a mock DNSSEC chain, certificates.

The Letro server's tests and benchmarks import it too (they put ``veraid/tests`` on their
path: this directory is not a package, so that the tests import the installed ``veraid``).
"""

from __future__ import annotations

import functools
import math
import secrets
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.RRSIG
import dns.rdtypes.ANY.TXT
import dns.rrset
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key

import veraid
from veraid import _asn1, _der
from veraid._bundles import _metadata, _signature_bundle
from veraid._cms import sign_signed_data
from veraid._pki import Certificate

ORG = "example.com"
SERVICE = veraid.OID_TEST_SERVICE
PLAINTEXT = b"Hello VeraId"


@functools.cache
def rsa_key(index: int) -> rsa.RSAPrivateKey:
    """RSA-2048 keys are slow to generate: each test session makes each one once."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


ZONE_KEYS = (0, 1, 2)  # root, com., example.com.
ORG_KEY, MEMBER_KEY, OTHER_ORG_KEY = 3, 4, 5


@dataclass(frozen=True)
class Pki:
    """A consistent set of VeraId material, valid over ``period``."""

    now: datetime
    period: veraid.DatePeriod
    chain: veraid.MockChain
    org_certificate: bytes
    member_certificate: bytes

    @property
    def trust_anchors(self) -> list[veraid.TrustAnchor]:
        return [self.chain.trust_anchor]

    @property
    def member_id_bundle(self) -> bytes:
        return veraid.serialise_member_id_bundle(
            self.chain.responses, self.org_certificate, self.member_certificate
        )

    def member_signature(
        self,
        *,
        encapsulate: bool = False,
        plaintext: bytes = PLAINTEXT,
        service: str = SERVICE,
        period: veraid.DatePeriod | None = None,
    ) -> bytes:
        period = period or self.period
        return veraid.sign_as_member(
            plaintext,
            service,
            self.member_id_bundle,
            rsa_key(MEMBER_KEY),
            period.start,
            period.end,
            encapsulate=encapsulate,
        )

    def org_signature(self, user_name: str | None, *, encapsulate: bool = False) -> bytes:
        return veraid.sign_as_organisation(
            PLAINTEXT,
            SERVICE,
            self.chain.responses,
            self.org_certificate,
            rsa_key(ORG_KEY),
            self.period.start,
            self.period.end,
            user_name=user_name,
            encapsulate=encapsulate,
        )


def txt_rdata(
    ttl: timedelta = timedelta(hours=1), service: str | None = None, key: int = ORG_KEY
) -> str:
    return veraid.generate_txt_rdata(rsa_key(key).public_key(), ttl, service)


def make_chain(txt_records: Sequence[str], period: veraid.DatePeriod) -> veraid.MockChain:
    return veraid.generate_mock_chain(ORG, txt_records, period, [rsa_key(i) for i in ZONE_KEYS])


def make_pki(
    *,
    now: datetime | None = None,
    txt_records: Sequence[str] | None = None,
    chain_period: veraid.DatePeriod | None = None,
    org_period: veraid.DatePeriod | None = None,
    member_period: veraid.DatePeriod | None = None,
    member_name: str | None = "alice",
) -> Pki:
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    period = veraid.DatePeriod(now - timedelta(minutes=10), now + timedelta(hours=1))
    chain = make_chain(
        txt_records if txt_records is not None else [txt_rdata()], chain_period or period
    )
    org_period = org_period or period
    org = veraid.issue_organisation_certificate(
        ORG, rsa_key(ORG_KEY), org_period.start, org_period.end
    )
    member_period = member_period or period
    member = veraid.issue_member_certificate(
        member_name,
        rsa_key(MEMBER_KEY).public_key(),
        org,
        rsa_key(ORG_KEY),
        member_period.start,
        member_period.end,
    )
    return Pki(now, period, chain, org, member)


def with_chain(pki: Pki, responses: Sequence[bytes]) -> Pki:
    return replace(pki, chain=veraid.MockChain(tuple(responses), pki.chain.trust_anchor))


# --- Large and hostile chains ------------------------------------------------------------------
#
# Chains shaped to reach (or pass) the limits of veraid._limits, signed for real so that
# validation gets as far as the shape allows, and bundles an attacker could send: signed by
# a self-issued organisation, they pass the certificate and CMS checks and leave the whole
# cost to the DNSSEC chain.

ZonePrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

_TTL = 300
IN = dns.rdataclass.IN
A, DNSKEY, DS, TXT = dns.rdatatype.A, dns.rdatatype.DNSKEY, dns.rdatatype.DS, dns.rdatatype.TXT
_PAD_NAME = dns.name.from_text("pad.invalid.")


def dnssec_algorithm(key: ZonePrivateKey) -> int:
    if isinstance(key, rsa.RSAPrivateKey):
        return 8  # RSASHA256
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return 13 if key.curve.name == "secp256r1" else 14
    return 15 if isinstance(key, ed25519.Ed25519PrivateKey) else 16


@dataclass(frozen=True)
class ChainShape:
    """How every zone of a mock chain departs from a minimal one (one key, one RRSIG)."""

    extra_keys: int = 0  # DNSKEYs beside the signing key, of its algorithm and key length
    colliding_keys: int = 0  # of the extra keys, those sharing the signing key's tag
    rrsigs: int = 1  # valid RRSIGs per RRset, each with its own original TTL and inception
    junk_rrsigs: int = 0  # RRSIGs per RRset naming the signing key, their signatures random
    extra_ds: int = 0  # DS records per zone matching no key (one digest type each)
    delegate_junk: bool = False  # DS records for the colliding keys too (below the root)
    extra_answers: int = 0  # unrelated records in each answer section
    extra_responses: int = 0  # responses to questions validation never asks
    response_bytes: int = 0  # each response padded to this size (additional section)
    junk_exponent_bits: int = 17  # public exponent length of RSA junk keys
    junk_modulus_bits: int | None = None  # of RSA junk keys (None: the signing key's)


def new_dnskey(flags: int, algorithm: int, key: bytes) -> dns.rdtypes.ANY.DNSKEY.DNSKEY:
    return dns.rdtypes.ANY.DNSKEY.DNSKEY(IN, DNSKEY, flags, 3, algorithm, key)  # type: ignore[no-untyped-call]


def _dnskey(key: ZonePrivateKey, flags: int = 257) -> dns.rdtypes.ANY.DNSKEY.DNSKEY:
    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY = dns.dnssec.make_dnskey(
        key.public_key(), dnssec_algorithm(key), flags=flags
    )
    return dnskey


def _junk_key_material(
    signing: ZonePrivateKey, exponent_bits: int, modulus_bits: int | None
) -> bytes:
    """Key bytes of the signing key's algorithm (and size, by default) that load as a key
    and verify nothing (a random RSA modulus; a fresh EC or EdDSA key)."""
    if isinstance(signing, rsa.RSAPrivateKey):
        bits = modulus_bits or signing.key_size
        modulus = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        exponent = (1 << (exponent_bits - 1)) | 1
        exponent_bytes = exponent.to_bytes((exponent_bits + 7) // 8, "big")
        modulus_bytes = modulus.to_bytes((bits + 7) // 8, "big")
        return bytes([len(exponent_bytes)]) + exponent_bytes + modulus_bytes
    if isinstance(signing, ec.EllipticCurvePrivateKey):
        other: ZonePrivateKey = ec.generate_private_key(signing.curve)
    elif isinstance(signing, ed25519.Ed25519PrivateKey):
        other = ed25519.Ed25519PrivateKey.generate()
    else:
        other = ed448.Ed448PrivateKey.generate()
    return bytes(_dnskey(other).key)


def _with_tag(key: bytes, algorithm: int, tag: int) -> dns.rdtypes.ANY.DNSKEY.DNSKEY | None:
    """A DNSKEY with these key bytes and the given key tag, its flags chosen to get there
    (ZONE set, REVOKE clear; the other bits are free); None if no flags reach the tag."""
    rest = bytes([3, algorithm]) + key + b"\0" * (len(key) % 2)
    rest_sum = sum(struct.unpack(f"!{len(rest) // 2}H", rest))
    # tag = (total + (total >> 16)) mod 2^16 with total = rest_sum + flags: solve for the
    # flags given each possible high half of the total.
    for high in (rest_sum >> 16, (rest_sum >> 16) + 1):
        flags = (tag - rest_sum - high) % 0x10000
        if (rest_sum + flags) >> 16 == high and flags & 0x0180 == 0x0100:
            return new_dnskey(flags, algorithm, key)
    return None


def junk_dnskeys(
    signing: ZonePrivateKey,
    count: int,
    *,
    colliding: int = 0,
    exponent_bits: int = 17,
    modulus_bits: int | None = None,
) -> list[dns.rdtypes.ANY.DNSKEY.DNSKEY]:
    """``count`` DNSKEYs like the signing key's, the first ``colliding`` with its key tag."""
    real = _dnskey(signing)
    keys: list[dns.rdtypes.ANY.DNSKEY.DNSKEY] = []
    while len(keys) < count:
        material = _junk_key_material(signing, exponent_bits, modulus_bits)
        if len(keys) < colliding:
            key = _with_tag(material, real.algorithm, real.key_id())
            if key is None:
                continue
        else:
            key = new_dnskey(257, real.algorithm, material)
        keys.append(key)
    return keys


def _rrsigs(
    rrset: dns.rrset.RRset,
    key: ZonePrivateKey,
    signer: dns.name.Name,
    period: veraid.DatePeriod,
    shape: ChainShape,
) -> list[dns.rdtypes.ANY.RRSIG.RRSIG]:
    dnskey = _dnskey(key)
    inception, expiration = int(period.start.timestamp()), int(period.end.timestamp())
    rrsigs: list[dns.rdtypes.ANY.RRSIG.RRSIG] = []
    for index in range(shape.rrsigs):
        # Each with its own canonical form (original TTL) and period: nothing to share.
        copy = dns.rrset.from_rdata_list(rrset.name, _TTL + index, list(rrset))
        rrsig = dns.dnssec.sign(copy, key, signer, dnskey, inception - index, expiration)
        assert isinstance(rrsig, dns.rdtypes.ANY.RRSIG.RRSIG)
        rrsigs.append(rrsig)
    for index in range(shape.junk_rrsigs):
        rrsigs.append(
            rrsigs[0].replace(
                original_ttl=_TTL + shape.rrsigs + index,
                signature=secrets.token_bytes(len(rrsigs[0].signature)),
            )  # type: ignore[arg-type]
        )
    return rrsigs


def _wire(message: dns.message.Message) -> bytes:
    # In order (dnspython shuffles each RRset by default): junk keys stay first.
    wire: bytes = message.to_wire(max_size=65535, want_shuffle=False)
    return wire


def _pad(message: dns.message.Message, size: int) -> None:
    """Add a TXT record to the additional section to make the message ``size`` bytes."""
    missing = size - len(_wire(message))
    overhead = len(_PAD_NAME.to_digestable()) + 10  # owner, type, class, TTL, length
    if missing <= overhead:
        return
    length = missing - overhead
    strings = []
    while length > 0:
        chunk = min(length - 1, 255)
        strings.append(b"x" * chunk)
        length -= chunk + 1
    txt = dns.rdtypes.ANY.TXT.TXT(IN, TXT, strings)
    message.additional.append(dns.rrset.from_rdata(_PAD_NAME, _TTL, txt))


def _extra_answers(name: dns.name.Name, count: int) -> list[dns.rrset.RRset]:
    owner = dns.name.from_text("unrelated", name)
    return [
        dns.rrset.from_rdata(owner, _TTL, dns.rdata.from_text(IN, A, f"192.0.2.{index % 250 + 1}"))
        for index in range(count)
    ]


def _response(
    rrset: dns.rrset.RRset, rrsigs: Sequence[dns.rdtypes.ANY.RRSIG.RRSIG], shape: ChainShape
) -> bytes:
    message = dns.message.Message()
    message.flags |= dns.flags.QR
    message.question.append(dns.rrset.RRset(rrset.name, IN, rrset.rdtype))
    message.answer.append(rrset)
    message.answer.append(dns.rrset.from_rdata_list(rrset.name, _TTL, rrsigs))
    message.answer.extend(_extra_answers(rrset.name, shape.extra_answers))
    _pad(message, shape.response_bytes)
    return _wire(message)


def _junk_ds(zone: dns.name.Name, key: ZonePrivateKey, count: int) -> list[dns.rdtypes.ANY.DS.DS]:
    # One digest type each, so each costs a digest of every key of the zone.
    types = [(1, 20), (2, 32), (4, 48)]
    return [
        dns.rdtypes.ANY.DS.DS(  # type: ignore[no-untyped-call]
            IN,
            DS,
            index,
            dnssec_algorithm(key),
            types[index % 3][0],
            secrets.token_bytes(types[index % 3][1]),
        )
        for index in range(count)
    ]


def _unused_responses(domain: dns.name.Name, count: int, shape: ChainShape) -> list[bytes]:
    responses = []
    for index in range(count):
        message = dns.message.Message()
        message.flags |= dns.flags.QR
        message.question.append(
            dns.rrset.RRset(dns.name.from_text(f"unused{index}", domain), IN, TXT)
        )
        _pad(message, shape.response_bytes)
        responses.append(_wire(message))
    return responses


def shaped_chain(
    domain: str,
    txt_records: Sequence[str],
    period: veraid.DatePeriod,
    zone_keys: Sequence[ZonePrivateKey],
    shape: ChainShape,
) -> veraid.MockChain:
    """A chain like ``veraid.generate_mock_chain``'s (one zone per label, ``zone_keys[0]``
    for the root) with every zone shaped by ``shape``."""
    apex = dns.name.from_text(domain)
    zones = [apex.split(depth)[1] for depth in range(1, len(apex) + 1)]
    assert len(zones) == len(zone_keys), f"{len(zones)} zone keys are needed"
    responses = []
    for index, (zone, key) in enumerate(zip(zones, zone_keys, strict=True)):
        junk = junk_dnskeys(
            key,
            shape.extra_keys,
            colliding=shape.colliding_keys,
            exponent_bits=shape.junk_exponent_bits,
            modulus_bits=shape.junk_modulus_bits,
        )
        # Junk first: each RRSIG tries the colliding keys before the one that verifies.
        keys = dns.rrset.from_rdata_list(zone, _TTL, [*junk, _dnskey(key)])
        responses.append(_response(keys, _rrsigs(keys, key, zone, period, shape), shape))
        if index:
            parent_key = zone_keys[index - 1]
            delegated = [
                _dnskey(key),
                *(junk[: shape.colliding_keys] if shape.delegate_junk else []),
            ]
            ds = [dns.dnssec.make_ds(zone, dnskey, "SHA256") for dnskey in delegated]
            ds_rrset = dns.rrset.from_rdata_list(
                zone, _TTL, [*_junk_ds(zone, key, shape.extra_ds), *ds]
            )
            rrsigs = _rrsigs(ds_rrset, parent_key, zones[index - 1], period, shape)
            responses.append(_response(ds_rrset, rrsigs, shape))
    txt_rrset = dns.rrset.from_rdata_list(
        dns.name.from_text("_veraid", apex),
        _TTL,
        [dns.rdtypes.ANY.TXT.TXT(IN, TXT, [record.encode()]) for record in txt_records],
    )
    responses.append(
        _response(txt_rrset, _rrsigs(txt_rrset, zone_keys[-1], apex, period, shape), shape)
    )
    responses.extend(_unused_responses(apex, shape.extra_responses, shape))
    root_ds = dns.dnssec.make_ds(dns.name.root, _dnskey(zone_keys[0]), "SHA256")
    anchor = veraid.TrustAnchor(
        root_ds.key_tag, root_ds.algorithm, root_ds.digest_type, root_ds.digest
    )
    return veraid.MockChain(tuple(responses), anchor)


def shaped_pki(
    shape: ChainShape,
    *,
    domain: str = ORG,
    zone_keys: Sequence[ZonePrivateKey] | None = None,
    txt_records: Sequence[str] | None = None,
) -> Pki:
    """A Pki whose chain has ``shape`` (zone keys: the shared RSA-2048 keys by default)."""
    now = datetime.now(UTC).replace(microsecond=0)
    period = veraid.DatePeriod(now - timedelta(minutes=10), now + timedelta(hours=1))
    labels = len(domain.rstrip(".").split(".")) + 1
    keys = list(zone_keys) if zone_keys is not None else [rsa_key(10 + i) for i in range(labels)]
    records = txt_records if txt_records is not None else [txt_rdata()]
    chain = shaped_chain(domain, records, period, keys, shape)
    org = veraid.issue_organisation_certificate(domain, rsa_key(ORG_KEY), period.start, period.end)
    member = veraid.issue_member_certificate(
        "alice", rsa_key(MEMBER_KEY).public_key(), org, rsa_key(ORG_KEY), period.start, period.end
    )
    return Pki(now, period, chain, org, member)


class SigningOrganisation(Protocol):
    """A VeraId organisation that can sign: ``infra.agents.VeraidOrg`` is one."""

    @property
    def chain(self) -> veraid.MockChain: ...
    @property
    def certificate(self) -> bytes: ...
    @property
    def key(self) -> rsa.RSAPrivateKey: ...
    @property
    def period(self) -> veraid.DatePeriod: ...


@dataclass(frozen=True)
class Organisation:
    chain: veraid.MockChain
    certificate: bytes
    key: rsa.RSAPrivateKey
    period: veraid.DatePeriod


def organisation(pki: Pki) -> Organisation:
    return Organisation(pki.chain, pki.org_certificate, rsa_key(ORG_KEY), pki.period)


def _root_dnskey_response(responses: Sequence[bytes]) -> int:
    for index, response in enumerate(responses):
        question = dns.message.from_wire(response).question
        if question and (question[0].name, question[0].rdtype) == (dns.name.root, DNSKEY):
            return index
    raise ValueError("The chain has no root DNSKEY response")


def bloated_root_response(response: bytes, junk_keys: int, junk_rrsigs: int) -> bytes:
    """The root DNSKEY response with ``junk_keys`` tiny DNSKEYs added to its RRset and
    ``junk_rrsigs`` RRSIGs that name its real key (the trust anchor's) with a one-byte
    signature: validating it without limits canonicalises the whole RRset for each RRSIG."""
    message = dns.message.from_wire(response)
    keys, rrsigs = message.answer[0], message.answer[1]
    junk = [new_dnskey(257, 8, index.to_bytes(2, "big")) for index in range(junk_keys)]
    bad = [rrsigs[0].replace(original_ttl=index, signature=b"\x01") for index in range(junk_rrsigs)]
    bloated = dns.message.Message(message.id)
    bloated.flags = message.flags
    bloated.question = message.question
    bloated.answer = [
        dns.rrset.from_rdata_list(keys.name, keys.ttl, [*keys, *junk]),
        dns.rrset.from_rdata_list(rrsigs.name, rrsigs.ttl, [*bad, *rrsigs]),
    ]
    return _wire(bloated)


def bloated_signature_bundle(
    org: SigningOrganisation,
    *,
    plaintext: bytes = PLAINTEXT,
    service_oid: str = SERVICE,
    user_name: str | None = "mallory",
    junk_keys: int = 1100,
    junk_rrsigs: int = 200,
) -> bytes:
    """An organisation SignatureBundle (encapsulating ``plaintext``) whose chain's root
    DNSKEY response is bloated (``bloated_root_response``): about 30 KiB by default, it
    passes the certificate and CMS checks and cost seconds of CPU before the chain limits."""
    responses = list(org.chain.responses)
    index = _root_dnskey_response(responses)
    responses[index] = bloated_root_response(responses[index], junk_keys, junk_rrsigs)
    return veraid.sign_as_organisation(
        plaintext,
        service_oid,
        responses,
        org.certificate,
        org.key,
        org.period.start,
        org.period.end,
        user_name=user_name,
        encapsulate=True,
    )


# --- Hostile signatures -----------------------------------------------------------------------


def _rsa_key_from(p: int, q: int, e: int, d: int) -> rsa.RSAPrivateKey:
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(e, p * q)
    )
    return numbers.private_key()


def long_exponent_key(bits: int = 3072) -> rsa.RSAPrivateKey:
    """An RSA key whose public exponent is as long as its modulus (a short private exponent
    makes one): it signs as fast as any key, but each verification costs a signature's
    work. OpenSSL allows such exponents up to 3072-bit moduli."""
    base = rsa.generate_private_key(public_exponent=65537, key_size=bits).private_numbers()
    phi = (base.p - 1) * (base.q - 1)
    while True:
        d = secrets.randbits(bits // 2) | 1
        if math.gcd(d, phi) == 1:
            return _rsa_key_from(base.p, base.q, pow(d, -1, phi), d)


def rsa_key_with_exponent(bits: int, exponent: int) -> rsa.RSAPrivateKey:
    """An RSA key with this public exponent (cryptography only makes 3 and 65537)."""
    while True:
        base = rsa.generate_private_key(public_exponent=65537, key_size=bits).private_numbers()
        phi = (base.p - 1) * (base.q - 1)
        if math.gcd(exponent, phi) == 1:
            return _rsa_key_from(base.p, base.q, exponent, pow(exponent, -1, phi))


def _signer(certificate: bytes) -> Certificate:
    """The certificate as the signing code needs it, without load_certificate's checks
    (which refuse the keys some hostile bundles are made with)."""
    tbs = asn1_x509.Certificate.load(certificate)["tbs_certificate"]
    public_key = load_der_public_key(tbs["subject_public_key_info"].dump())
    assert isinstance(public_key, rsa.RSAPublicKey)
    validity = tbs["validity"]
    return Certificate(
        der=certificate,
        tbs=tbs.dump(),
        signature_algorithm=b"",
        signature=b"",
        serial_number=tbs["serial_number"].native,
        serial=tbs["serial_number"].dump(),  # what sign_signed_data names the signer by
        issuer=tbs["issuer"].dump(),
        issuer_name=(),
        subject=tbs["subject"].dump(),
        subject_name=(),
        common_name="",
        validity=veraid.DatePeriod(validity["not_before"].native, validity["not_after"].native),
        public_key=public_key,
        spki=b"",
        is_ca=False,
    )


def member_signature_with(
    pki: Pki,
    *,
    plaintext: bytes = PLAINTEXT,
    service_oid: str = SERVICE,
    certificates: Sequence[bytes] = (),
    extra_attributes: Sequence[tuple[str, bytes]] = (),
    member_certificate: bytes | None = None,
    member_key: rsa.RSAPrivateKey | None = None,
) -> bytes:
    """A member SignatureBundle (plaintext encapsulated) with ``certificates`` before the
    member's in the SignedData and ``extra_attributes`` signed after the VeraId ones."""
    member = _signer(member_certificate or pki.member_certificate)
    metadata = _metadata(service_oid, pki.period.start, pki.period.end)
    content_info = sign_signed_data(
        plaintext,
        member_key or rsa_key(MEMBER_KEY),
        member,
        certificates=(*certificates, member.der),
        extra_attributes=[(_asn1.OID_SIGNATURE_METADATA, metadata), *extra_attributes],
        encapsulate=True,
    )
    return _signature_bundle(pki.chain.responses, pki.org_certificate, content_info)


# --- Editing responses ------------------------------------------------------------------------


def with_unrelated_answers(response: bytes, count: int) -> bytes:
    """``response`` with ``count`` A records of another owner added to its answer section:
    its RRsets and their signatures are untouched."""
    message = dns.message.from_wire(response)
    message.answer.extend(_extra_answers(message.question[0].name, count))
    return _wire(message)


def padded(response: bytes, size: int) -> bytes:
    """``response`` made ``size`` bytes long with a record in its additional section (a
    padding record already there is replaced)."""
    message = dns.message.from_wire(response)
    message.additional = [rrset for rrset in message.additional if rrset.name != _PAD_NAME]
    _pad(message, size)
    wire = _wire(message)
    assert len(wire) == size, f"padded to {len(wire)} bytes instead of {size}"
    return wire


# An unrecognised extension: (OID, value, critical).
JunkExtension = tuple[str, bytes, bool]


def junk_organisation_certificate(
    period: veraid.DatePeriod, extensions: Sequence[JunkExtension], domain: str = ORG
) -> bytes:
    """A valid self-issued organisation certificate (``ORG_KEY``, CA) for ``domain``,
    carrying ``extensions`` besides its BasicConstraints."""
    key = rsa_key(ORG_KEY)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, domain)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(period.start)
        .not_valid_after(period.end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    )
    for oid, value, critical in extensions:
        extension = x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value)
        builder = builder.add_extension(extension, critical=critical)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    return builder.sign(key, hashes.SHA256(), rsa_padding=pss).public_bytes(Encoding.DER)


def with_organisation_certificate(pki: Pki, certificate: bytes, *, issue: bool) -> Pki:
    """``pki`` with another organisation certificate (``ORG_KEY``'s) and, if ``issue``, a
    member certificate it issued (else the old one, for certificates that cannot issue)."""
    member = pki.member_certificate
    if issue:
        member = veraid.issue_member_certificate(
            "alice",
            rsa_key(MEMBER_KEY).public_key(),
            certificate,
            rsa_key(ORG_KEY),
            pki.period.start,
            pki.period.end,
        )
    return Pki(pki.now, pki.period, pki.chain, certificate, member)


def organisation_certificate_with_elements(pki: Pki, elements: int) -> bytes:
    """An organisation certificate (the Pki's name and key) of exactly ``elements`` DER
    elements, made up with empty unrecognised extensions: 3 elements each, 4 if critical."""

    def issue(count: int, critical: int) -> bytes:
        junk = [(f"1.2.3.{index}", b"", index < critical) for index in range(count)]
        return junk_organisation_certificate(pki.period, junk)

    count, critical = divmod(elements - der_element_count(issue(0, 0)), 3)
    certificate = issue(count, critical)
    assert der_element_count(certificate) == elements, "no such certificate"
    return certificate


def der_element_count(der: bytes) -> int:
    """The DER elements of ``der``, as the certificate limit counts them."""
    return sum(1 for _ in _der._elements(der))


def organisation_certificate_of_size(pki: Pki, size: int) -> bytes:
    """An organisation certificate (the Pki's name and key) padded to ``size`` bytes with
    an unrecognised extension."""

    def issue(filler: int) -> bytes:
        return junk_organisation_certificate(pki.period, [("1.2.3.4", b"x" * filler, False)])

    filler = size - len(issue(0))
    for _ in range(8):  # length octets grow with the filler; a few steps settle it
        certificate = issue(filler)
        if len(certificate) == size:
            return certificate
        filler += size - len(certificate)
    raise ValueError(f"No certificate of exactly {size} bytes")


# --- CPU bounds -------------------------------------------------------------------------------

# Generous enough that CI noise cannot flake it; the unbounded code took ~500 ms of CPU on
# the bloated bundle and ~50 ms on the 2000 signed attributes.
CPU_BOUND_SECONDS = 0.05


def cpu_seconds(operation: Callable[[], object]) -> float:
    """This process's CPU time for ``operation``: other processes' load does not count."""
    start = time.process_time()
    operation()
    return time.process_time() - start
