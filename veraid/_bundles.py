"""Signature bundles and member id bundles: production and verification.

The verification algorithm follows ``@relaycorp/veraid`` 3.1.2 (``SignatureBundle.js``,
``Chain.js``, ``dns/VeraidDnssecChain.js``), with one stricter rule: the DNSSEC signatures must
all be valid at one instant (see ``_dns``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from asn1crypto import core, x509
from cryptography.hazmat.primitives.asymmetric import rsa

from veraid import _asn1
from veraid import _der as der
from veraid._cms import ParsedSignedData, parse_signed_data, sign_signed_data, verify_signed_data
from veraid._dns import (
    IANA_TRUST_ANCHORS,
    ChainValidation,
    TrustAnchor,
    validate_chain,
    verification_period,
)
from veraid._dnssec import check_chain_size
from veraid._errors import (
    CertificateError,
    InvalidSignatureError,
    LimitError,
    MalformedError,
    ServiceMismatchError,
    UnsupportedVersionError,
    ValidityPeriodError,
)
from veraid._limits import MAX_DER_ELEMENTS
from veraid._periods import DatePeriod, require_overlap
from veraid._pki import (
    BOT_NAME,
    Certificate,
    key_spec_from_spki,
    load_certificate,
    validate_user_name,
    verify_issued_by,
)


@dataclass(frozen=True, slots=True)
class Member:
    """A verified VeraId identity: ``user`` is None for the organisation's bot."""

    organisation: str
    user: str | None

    def __str__(self) -> str:
        return self.organisation if self.user is None else f"{self.user}@{self.organisation}"


@dataclass(frozen=True, slots=True)
class SignatureVerification:
    """The result of verifying a SignatureBundle."""

    member: Member
    plaintext: bytes
    period: DatePeriod  # when everything verified was valid at once (within the required period)
    signed_by_member: bool  # False for an organisation signature attributed to the member


@dataclass(frozen=True, slots=True)
class MemberIdVerification:
    """The result of verifying a MemberIdBundle."""

    member: Member
    period: DatePeriod


class VerificationCache:
    """Remembers validated DNSSEC chains and organisation certificates, by their exact bytes.

    An entry records *when* the chain is valid, so a cached chain is never accepted outside
    the period its signatures cover. Bounded; least recently used entries go first. Not
    thread-safe: give each thread its own.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self._max_entries = max_entries
        self._chains: OrderedDict[tuple[object, ...], ChainValidation] = OrderedDict()
        self._certificates: OrderedDict[tuple[bytes, bool], Certificate] = OrderedDict()

    def chain(
        self, responses: tuple[bytes, ...], domain: str, anchors: tuple[TrustAnchor, ...]
    ) -> ChainValidation:
        key = (responses, domain, anchors)
        validation = self._chains.get(key)
        if validation is None:
            validation = validate_chain(responses, domain, anchors)
            self._remember(self._chains, key, validation)
        else:
            self._chains.move_to_end(key)
        return validation

    def certificate(self, der: bytes, what: str, *, issuer: bool) -> Certificate:
        key = (der, issuer)
        certificate = self._certificates.get(key)
        if certificate is None:
            certificate = load_certificate(der, what, issuer=issuer)
            self._remember(self._certificates, key, certificate)
        else:
            self._certificates.move_to_end(key)
        return certificate

    def _remember(self, store: OrderedDict, key: object, value: object) -> None:  # type: ignore[type-arg]
        store[key] = value
        if len(store) > self._max_entries:
            store.popitem(last=False)


def _as_period(when: datetime | DatePeriod) -> DatePeriod:
    return when if isinstance(when, DatePeriod) else DatePeriod.at(when)


_Bundle = TypeVar("_Bundle", _asn1.SignatureBundle, _asn1.MemberIdBundle)


def _decode_bundle(
    spec: type[_Bundle], data: bytes, what: str
) -> tuple[_Bundle, tuple[bytes, ...], bytes]:
    bundle = _asn1.load_strict(spec, data, what)
    try:
        # Bounding the elements bounds the work of every asn1crypto parse that follows.
        der.check_definite_lengths(data, MAX_DER_ELEMENTS)
    except der.TooManyElementsError as error:
        raise LimitError(f"{what} has {error} outside its certificates and DNS messages") from None
    except der.EncodingError as error:
        raise MalformedError(f"{what} is not DER: {error}") from None
    try:
        _asn1.refuse_extra_fields(bundle)
        version = bundle["version"].native
        responses = tuple(item.native for item in bundle["dnssec_chain"])
        org_der = _asn1.der_from_implicit(bundle["organisation_certificate"])
    except _asn1.ASN1_ERRORS as error:
        raise MalformedError(f"{what} is malformed: {error}") from None
    if version != 0:
        raise UnsupportedVersionError(f"Unsupported {what} version ({version})")
    check_chain_size(responses)  # a chain over the limits is refused before any other work
    return bundle, responses, org_der


def _organisation_name(certificate: Certificate) -> str:
    name = certificate.common_name.removesuffix(".")
    if not name:
        raise MalformedError("Organisation certificate has an empty Common Name")
    return name


def _verify_chain(
    *,
    responses: tuple[bytes, ...],
    organisation: Certificate,
    signer: Certificate,
    service_oid: str,
    period: DatePeriod,
    trust_anchors: Sequence[TrustAnchor],
    cache: VerificationCache | None,
) -> DatePeriod:
    """Steps common to both bundles: certificate path, TXT record, DNSSEC chain."""
    if signer is not organisation:
        verify_issued_by(signer, organisation)
        period = require_overlap(period, signer.validity, "Member certificate validity")
    period = require_overlap(period, organisation.validity, "Organisation certificate validity")
    spec = key_spec_from_spki(organisation.public_key, organisation.spki)
    domain = _organisation_name(organisation)
    anchors = tuple(trust_anchors)
    if cache is None:
        validation = validate_chain(responses, domain, anchors)
    else:
        validation = cache.chain(responses, domain, anchors)
    return verification_period(validation, spec, service_oid, period)


def _load(
    der: bytes, what: str, cache: VerificationCache | None, *, issuer: bool = False
) -> Certificate:
    if cache is None:
        return load_certificate(der, what, issuer=issuer)
    return cache.certificate(der, what, issuer=issuer)


def _metadata_period(parsed: ParsedSignedData, service_oid: str) -> DatePeriod:
    values = parsed.attributes.get(_asn1.OID_SIGNATURE_METADATA)
    if not values or len(values) != 1:
        raise InvalidSignatureError("Signature metadata attribute is missing")
    metadata = _asn1.load_strict(_asn1.SignatureMetadata, values[0].dump(), "Signature metadata")
    try:
        _asn1.refuse_extra_fields(metadata)
        oid = metadata["service_oid"].dotted
        validity = metadata["validity_period"]
        _asn1.refuse_extra_fields(validity)
        start, end = validity["start"].native, validity["end"].native
    except _asn1.ASN1_ERRORS as error:
        raise MalformedError(f"Signature metadata is malformed: {error}") from None
    if oid != service_oid:
        raise ServiceMismatchError(f"Signature is bound to a different service ({oid})")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        raise MalformedError("Signature metadata has malformed dates")
    # DatePeriod refuses dates without a time zone and periods that end before they start.
    return DatePeriod(start, end)


def _attributed_user(parsed: ParsedSignedData) -> tuple[bool, str | None]:
    """(is an organisation signature, attributed user name)."""
    values = parsed.attributes.get(_asn1.OID_MEMBER_ATTRIBUTION)
    if values is None:
        return False, None
    if len(values) != 1:
        raise MalformedError("Member attribution must have one value")
    try:
        attribution = core.UTF8String.load(values[0].dump(), strict=True).native
    except _asn1.ASN1_ERRORS:
        raise MalformedError("Member attribution is not a UTF8String") from None
    return True, None if attribution == BOT_NAME else attribution


@dataclass(frozen=True, slots=True)
class UnverifiedSignatureBundle:
    """What a SignatureBundle *claims*: who signed it and the plaintext it encapsulates.

    Nothing here is verified. It is for deciding where a bundle should be verified (a
    router choosing a queue, say), never for deciding anything about the signer.
    """

    member: Member
    plaintext: bytes | None  # None when the plaintext is detached


@dataclass(frozen=True, slots=True)
class _ReadBundle:
    parsed: ParsedSignedData
    responses: tuple[bytes, ...]
    organisation: Certificate
    signer: Certificate
    user: str | None
    is_org_signature: bool


def _read_signature_bundle(bundle: bytes, cache: VerificationCache | None) -> _ReadBundle:
    decoded, responses, org_der = _decode_bundle(_asn1.SignatureBundle, bundle, "SignatureBundle")
    parsed = parse_signed_data(decoded["signature"])
    organisation = _load(org_der, "Organisation certificate", cache, issuer=True)
    is_org_signature, attributed = _attributed_user(parsed)
    if is_org_signature:
        signer = organisation
        user = attributed
    else:
        signer = _member_signer(parsed, cache)
        user = None if signer.common_name == BOT_NAME else signer.common_name
    return _ReadBundle(parsed, responses, organisation, signer, user, is_org_signature)


def read_signature_bundle(bundle: bytes) -> UnverifiedSignatureBundle:
    """Decode a SignatureBundle without verifying anything but its structure.

    Raises a VeraidError subclass when the bundle cannot even be decoded. The result is
    untrusted until :func:`verify_signature_bundle` accepts the same bytes, which then
    reports the same member and plaintext.
    """
    read = _read_signature_bundle(bundle, None)
    member = Member(_organisation_name(read.organisation), read.user)
    return UnverifiedSignatureBundle(member, read.parsed.encapsulated)


def verify_signature_bundle(
    bundle: bytes,
    service_oid: str,
    when: datetime | DatePeriod,
    *,
    plaintext: bytes | None = None,
    trust_anchors: Sequence[TrustAnchor] = IANA_TRUST_ANCHORS,
    cache: VerificationCache | None = None,
) -> SignatureVerification:
    """Verify a SignatureBundle for ``service_oid`` at an instant or over a period.

    ``plaintext`` is the detached plaintext; leave it None when the bundle encapsulates it.
    Raises a VeraidError subclass saying what is wrong.
    """
    required = _as_period(when)
    read = _read_signature_bundle(bundle, cache)
    parsed, organisation, signer = read.parsed, read.organisation, read.signer
    content = plaintext if plaintext is not None else parsed.encapsulated
    if content is None or (parsed.encapsulated is not None and plaintext is not None):
        raise InvalidSignatureError(
            "The plaintext must be either encapsulated or passed separately (not both)"
        )
    if read.is_org_signature and (
        organisation.serial_number != parsed.signer_serial
        or organisation.issuer_name != parsed.signer_issuer
    ):
        raise InvalidSignatureError("An organisation signature must name the organisation")
    verify_signed_data(parsed, content, signer)
    period = require_overlap(required, _metadata_period(parsed, service_oid), "Signature validity")
    period = _verify_chain(
        responses=read.responses,
        organisation=organisation,
        signer=signer,
        service_oid=service_oid,
        period=period,
        trust_anchors=trust_anchors,
        cache=cache,
    )
    if read.user is not None:
        validate_user_name(read.user)
    return SignatureVerification(
        Member(_organisation_name(organisation), read.user),
        content,
        period,
        not read.is_org_signature,
    )


def _member_signer(parsed: ParsedSignedData, cache: VerificationCache | None) -> Certificate:
    for encoded in parsed.certificates:
        certificate = _load(encoded, "Member certificate", cache)
        if (
            certificate.serial_number == parsed.signer_serial
            and certificate.issuer_name == parsed.signer_issuer
        ):
            return certificate
    raise CertificateError("Member signature is missing the signer certificate")


def verify_member_id_bundle(
    bundle: bytes,
    service_oid: str,
    when: datetime | DatePeriod,
    *,
    trust_anchors: Sequence[TrustAnchor] = IANA_TRUST_ANCHORS,
    cache: VerificationCache | None = None,
) -> MemberIdVerification:
    """Verify a MemberIdBundle: the member certificate, its organisation and DNSSEC chain."""
    required = _as_period(when)
    decoded, responses, org_der = _decode_bundle(_asn1.MemberIdBundle, bundle, "MemberIdBundle")
    organisation = _load(org_der, "Organisation certificate", cache, issuer=True)
    member_der = _asn1.der_from_implicit(decoded["member_certificate"])
    member = _load(member_der, "Member certificate", cache)
    period = _verify_chain(
        responses=responses,
        organisation=organisation,
        signer=member,
        service_oid=service_oid,
        period=required,
        trust_anchors=trust_anchors,
        cache=cache,
    )
    user = None if member.common_name == BOT_NAME else member.common_name
    if user is not None:
        validate_user_name(user)
    return MemberIdVerification(Member(_organisation_name(organisation), user), period)


# --- Production -------------------------------------------------------------------------------


def _octet_string(value: bytes) -> bytes:
    return der.tlv(der.OCTET_STRING, value)


def _bundle(responses: Sequence[bytes], organisation_der: bytes, last: bytes) -> bytes:
    # SignatureBundle and MemberIdBundle share their first three fields; all IMPLICIT.
    return der.tlv(
        der.SEQUENCE,
        b"\x80\x01\x00",  # [0] version 0
        der.tlv(0xA1, der.contents_of(der.set_of(*map(_octet_string, responses)))),
        der.tlv(0xA2, der.contents_of(organisation_der)),
        last,
    )


def serialise_member_id_bundle(
    dnssec_chain: Sequence[bytes], organisation_certificate: bytes, member_certificate: bytes
) -> bytes:
    """The DER MemberIdBundle of a member certificate (certificates in DER)."""
    for certificate in (organisation_certificate, member_certificate):
        _asn1.load_strict(x509.Certificate, certificate, "Certificate")
    member = der.tlv(0xA3, der.contents_of(member_certificate))
    return _bundle(dnssec_chain, organisation_certificate, member)


def _metadata(service_oid: str, start: datetime, end: datetime) -> bytes:
    if end < start:
        raise ValidityPeriodError("Signature start date cannot be after its expiry date")
    metadata = _asn1.SignatureMetadata(
        {
            "service_oid": service_oid,
            "validity_period": {
                "start": start.replace(microsecond=0),
                "end": end.replace(microsecond=0),
            },
        }
    )
    encoded: bytes = metadata.dump()
    return encoded


def _signature_bundle(
    responses: Sequence[bytes], organisation_der: bytes, content_info: bytes
) -> bytes:
    return _bundle(responses, organisation_der, der.tlv(0xA3, der.contents_of(content_info)))


def sign_as_member(
    plaintext: bytes,
    service_oid: str,
    member_id_bundle: bytes,
    member_private_key: rsa.RSAPrivateKey,
    start: datetime,
    end: datetime,
    *,
    encapsulate: bool = False,
) -> bytes:
    """A member SignatureBundle over ``plaintext``, valid from ``start`` to ``end``."""
    decoded, responses, org_der = _decode_bundle(
        _asn1.MemberIdBundle, member_id_bundle, "MemberIdBundle"
    )
    member = load_certificate(
        _asn1.der_from_implicit(decoded["member_certificate"]), "Member certificate"
    )
    content_info = sign_signed_data(
        plaintext,
        member_private_key,
        member,
        certificates=(member.der,),
        extra_attributes=[(_asn1.OID_SIGNATURE_METADATA, _metadata(service_oid, start, end))],
        encapsulate=encapsulate,
    )
    return _signature_bundle(responses, org_der, content_info)


def sign_as_organisation(
    plaintext: bytes,
    service_oid: str,
    dnssec_chain: Sequence[bytes],
    organisation_certificate: bytes,
    organisation_private_key: rsa.RSAPrivateKey,
    start: datetime,
    end: datetime,
    *,
    user_name: str | None = None,
    encapsulate: bool = False,
) -> bytes:
    """An organisation SignatureBundle attributed to ``user_name`` (None: the bot)."""
    if user_name is not None:
        validate_user_name(user_name)
    organisation = load_certificate(
        organisation_certificate, "Organisation certificate", issuer=True
    )
    attribution = core.UTF8String(user_name if user_name is not None else BOT_NAME)
    content_info = sign_signed_data(
        plaintext,
        organisation_private_key,
        organisation,
        certificates=(),
        extra_attributes=[
            (_asn1.OID_SIGNATURE_METADATA, _metadata(service_oid, start, end)),
            (_asn1.OID_MEMBER_ATTRIBUTION, attribution.dump()),
        ],
        encapsulate=encapsulate,
    )
    return _signature_bundle(dnssec_chain, organisation.der, content_info)
