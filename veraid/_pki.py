"""Organisation and member certificates: issuance, decoding and the member-to-organisation path.

Facts from ``@relaycorp/veraid`` 3.1.2 (``utils/x509/Certificate.js``, ``pki/*.js``): X.509 v3,
CN as BMPString, critical BasicConstraints, key identifiers are SHA-256 digests of the SPKI,
RSA-PSS signatures with the hash of the issuer's key, a member certificate never outlives its
issuer, and serial numbers drawn as 64 random bits with only the sign bit cleared (so one in
512 is not minimal DER: see ``Certificate``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtensionOID, NameOID

from veraid import _algorithms as algorithms
from veraid import _der
from veraid._asn1 import ASN1_ERRORS, refuse_extra_fields, refuse_extra_fields_deep
from veraid._der import EncodingError, TooManyElementsError
from veraid._errors import (
    CertificateError,
    InvalidNameError,
    LimitError,
    MalformedError,
    UnsupportedKeyError,
)
from veraid._limits import (
    MAX_CERTIFICATE_BYTES,
    MAX_CERTIFICATE_ELEMENTS,
    MAX_RSA_EXPONENT_BITS,
)
from veraid._periods import DatePeriod

BOT_NAME = "@"
_FORBIDDEN_USER_NAME_CHARACTERS = frozenset("@\t\r\n")

# Key algorithm ids of the TXT record, and the digest of the key id, by RSA modulus size.
_KEY_ALGORITHM_BY_MODULUS = {2048: 1, 3072: 2, 4096: 3}
_KEY_ID_HASH_BY_MODULUS = {2048: "sha256", 3072: "sha384", 4096: "sha512"}


@dataclass(frozen=True, slots=True)
class KeySpec:
    """How a ``_veraid`` TXT record names an organisation key."""

    algorithm: int
    key_id: str


def spki_der(public_key: rsa.RSAPublicKey) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def key_spec(public_key: rsa.RSAPublicKey) -> KeySpec:
    """The algorithm id and key id (padded base64 digest of the SPKI) of an organisation key."""
    return key_spec_from_spki(public_key, spki_der(public_key))


def key_spec_from_spki(public_key: object, spki: bytes) -> KeySpec:
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise UnsupportedKeyError("Only RSA keys are supported")
    size = public_key.key_size
    if size not in _KEY_ALGORITHM_BY_MODULUS:
        raise UnsupportedKeyError(f"RSA keys of {size} bits are unsupported")
    digest = hashlib.new(_KEY_ID_HASH_BY_MODULUS[size], spki).digest()
    return KeySpec(_KEY_ALGORITHM_BY_MODULUS[size], base64.b64encode(digest).decode("ascii"))


def validate_user_name(name: str) -> None:
    """Refuse a user name containing ``@``, a tab, CR or LF (spaces are allowed)."""
    if not _FORBIDDEN_USER_NAME_CHARACTERS.isdisjoint(name):
        raise InvalidNameError(
            f"User name {name!r} contains an at sign or whitespace other than simple spaces"
        )


# A Name by value, as cryptography and pkijs compare them: per RDN, its (OID, value) pairs.
DistinguishedName = tuple[frozenset[tuple[str, object]], ...]


def distinguished_name(name: asn1_x509.Name) -> DistinguishedName:
    """A Name by value: the string type of an attribute (BMPString, UTF8String...) does not
    count. asn1crypto parses lazily: call inside ``except ASN1_ERRORS``."""
    rdns = []
    for rdn in name.chosen:
        attributes = set()
        for attribute in rdn:
            refuse_extra_fields(attribute)
            value = attribute["value"].native
            key = value if isinstance(value, str) else attribute["value"].dump()
            attributes.add((attribute["type"].dotted, key))
        rdns.append(frozenset(attributes))
    return tuple(rdns)


@dataclass(frozen=True, slots=True)
class Certificate:
    """A decoded VeraId certificate, with what verification needs precomputed.

    Decoded from the bytes as they came, with asn1crypto and ``_der.check_certificate`` rather
    than ``cryptography``, which refuses the non-minimal serial numbers ``@relaycorp/veraid``
    issues. The signature is verified over ``tbs`` as received; nothing is re-encoded.
    """

    der: bytes
    tbs: bytes  # tbsCertificate exactly as received: what the issuer signed
    signature_algorithm: bytes  # DER AlgorithmIdentifier
    signature: bytes
    serial_number: int
    serial: bytes  # the serialNumber INTEGER as encoded (a SignerInfo names it so)
    issuer: bytes  # DER Name as encoded
    issuer_name: DistinguishedName
    subject: bytes  # DER Name as encoded
    subject_name: DistinguishedName
    common_name: str
    validity: DatePeriod
    public_key: rsa.RSAPublicKey
    spki: bytes  # re-encoded from the key, as the TXT key id digests it
    is_ca: bool


def _common_name(subject: asn1_x509.Name, what: str) -> str:
    names = [
        attribute["value"].native
        for rdn in subject.chosen
        for attribute in rdn
        if attribute["type"].dotted == NameOID.COMMON_NAME.dotted_string
    ]
    if len(names) != 1 or not isinstance(names[0], str):
        raise MalformedError(f"{what} must have exactly one Common Name")
    return names[0]


# The extensions VeraId certificates carry, decoded strictly wherever they appear. Others are
# left as asn1crypto reads them (it parses those it knows), as cryptography did.
_EXTENSIONS: dict[str, type[core.Asn1Value]] = {
    ExtensionOID.BASIC_CONSTRAINTS.dotted_string: asn1_x509.BasicConstraints,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string: asn1_x509.AuthorityKeyIdentifier,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string: core.OctetString,
}


def _extensions(tbs: asn1_x509.TbsCertificate, what: str) -> dict[str, core.Asn1Value]:
    """The known extensions, decoded, by OID; an extension may appear once (RFC 5280)."""
    seen: set[str] = set()
    decoded: dict[str, core.Asn1Value] = {}
    for extension in tbs["extensions"] or ():
        refuse_extra_fields(extension)
        oid = extension["extn_id"].dotted
        if oid in seen:
            raise MalformedError(f"{what} has extension {oid} twice")
        seen.add(oid)
        if oid in _EXTENSIONS:
            value = extension["extn_value"].contents
            _der.check_x509_value(value)
            decoded[oid] = _EXTENSIONS[oid].load(value, strict=True)
            refuse_extra_fields_deep(decoded[oid])
    return decoded


def _is_ca(extensions: dict[str, core.Asn1Value]) -> bool:
    # veraid-js writes a pathLenConstraint beside cA false in member certificates, which
    # cryptography refuses to read but X.509 allows.
    constraints = extensions.get(ExtensionOID.BASIC_CONSTRAINTS.dotted_string)
    if constraints is None:
        return False
    path_length = constraints["path_len_constraint"].native
    if path_length is not None and path_length < 0:
        raise ValueError("negative pathLenConstraint")
    return bool(constraints["ca"].native)


def _validity(tbs: asn1_x509.TbsCertificate) -> DatePeriod:
    validity = tbs["validity"]
    return DatePeriod(validity["not_before"].native, validity["not_after"].native)


def _check_rsa_key(public_key: rsa.RSAPublicKey, what: str) -> None:
    # The sizes VeraId allows. A long public exponent would make each verification with
    # the key as slow as a signature (milliseconds): real keys use 65537.
    if public_key.key_size not in _KEY_ALGORITHM_BY_MODULUS:
        raise UnsupportedKeyError(f"{what} has an RSA key of {public_key.key_size} bits")
    exponent_bits = public_key.public_numbers().e.bit_length()
    if exponent_bits > MAX_RSA_EXPONENT_BITS:
        raise UnsupportedKeyError(
            f"{what} has an RSA exponent of {exponent_bits} bits (at most {MAX_RSA_EXPONENT_BITS})"
        )


def _rsa_key(spki: bytes, what: str) -> rsa.RSAPublicKey:
    public_key = load_der_public_key(spki)
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise UnsupportedKeyError(f"{what} has a key other than RSA")
    _check_rsa_key(public_key, what)
    return public_key


def _decode(data: bytes, what: str, issuer: bool) -> Certificate:
    certificate = asn1_x509.Certificate.load(data, strict=True)
    _der.check_certificate(data, MAX_CERTIFICATE_ELEMENTS)  # before the fields are decoded
    tbs = certificate["tbs_certificate"]
    for sequence in (certificate, tbs, tbs["validity"]):
        refuse_extra_fields(sequence)
    signature_algorithm = certificate["signature_algorithm"].dump()
    if tbs["signature"].dump() != signature_algorithm:
        raise MalformedError(f"{what} names two signature algorithms")
    if signature_algorithm != algorithms.RSA_PSS_SHA256:  # else exactly the expected DER
        refuse_extra_fields_deep(certificate["signature_algorithm"])
    extensions = _extensions(tbs, what)
    subject, issuer_der = tbs["subject"], tbs["issuer"].dump()
    subject_name = distinguished_name(subject)
    # An organisation certificate is self-issued: its issuer is read once, as its subject.
    same = issuer_der == subject.dump()
    public_key = _rsa_key(tbs["subject_public_key_info"].dump(), what)
    return Certificate(
        der=data,
        tbs=tbs.dump(),
        signature_algorithm=signature_algorithm,
        signature=certificate["signature_value"].native,
        serial_number=tbs["serial_number"].native,
        serial=tbs["serial_number"].dump(),
        issuer=issuer_der,
        issuer_name=subject_name if same else distinguished_name(tbs["issuer"]),
        subject=subject.dump(),
        subject_name=subject_name,
        common_name=_common_name(subject, what),
        validity=_validity(tbs),
        public_key=public_key,
        spki=spki_der(public_key),
        is_ca=issuer and _is_ca(extensions),
    )


def load_certificate(der: bytes, what: str, *, issuer: bool = False) -> Certificate:
    """Decode a DER certificate; MalformedError, UnsupportedKeyError or LimitError if unusable.

    ``issuer``: also read BasicConstraints (``is_ca`` is False otherwise).
    """
    if len(der) > MAX_CERTIFICATE_BYTES:
        # asn1crypto and the DER checks walk every element; real ones are ~1 KiB.
        raise LimitError(f"{what} has {len(der)} bytes (at most {MAX_CERTIFICATE_BYTES})")
    try:
        return _decode(der, what, issuer)
    except TooManyElementsError as error:
        raise LimitError(f"{what} has {error}") from None
    except EncodingError as error:
        raise MalformedError(f"{what} is not DER: {error}") from None
    except (*ASN1_ERRORS, UnsupportedAlgorithm) as error:
        raise MalformedError(f"{what} is malformed: {error}") from None


def signature_scheme(
    certificate: Certificate,
) -> tuple[padding.AsymmetricPadding, hashes.HashAlgorithm]:
    """The padding and hash a certificate was signed with, honouring RSA-PSS parameters."""
    try:
        algorithm = algos.SignedDigestAlgorithm.load(certificate.signature_algorithm)
        return algorithms.signature_scheme(algorithm, CertificateError)
    except ASN1_ERRORS as error:
        raise CertificateError(f"Unsupported certificate signature algorithm: {error}") from None


def verify_issued_by(member: Certificate, organisation: Certificate) -> None:
    """Check that the organisation (a CA) issued the member certificate."""
    if not organisation.is_ca:
        raise CertificateError("Organisation certificate is not a CA")
    if member.issuer_name != organisation.subject_name:
        raise CertificateError("Member certificate was not issued by the organisation")
    scheme, hash_algorithm = signature_scheme(member)
    try:
        organisation.public_key.verify(member.signature, member.tbs, scheme, hash_algorithm)
    except (InvalidSignature, ValueError):
        raise CertificateError(
            "Member certificate signature does not verify with the organisation key"
        ) from None


def _cryptography_name(der_name: bytes) -> x509.Name:
    """A decoded Name for cryptography's builder, each value with its own string type, so a
    member certificate's issuer encodes as its organisation certificate's subject."""
    rdns = []
    for rdn in asn1_x509.Name.load(der_name).chosen:
        attributes = []
        for attribute in rdn:
            value = attribute["value"]
            if not isinstance(value.native, str) or not isinstance(value, core.Choice):
                raise CertificateError("Organisation certificate subject has a non-string value")
            oid = x509.ObjectIdentifier(attribute["type"].dotted)
            string_type = _ASN1Type(value.chosen.tag)
            attributes.append(x509.NameAttribute(oid, value.native, _type=string_type))
        rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns)


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def _issue(
    *,
    common_name: str,
    subject_key: rsa.RSAPublicKey,
    issuer_key: rsa.RSAPrivateKey,
    issuer: Certificate | None,
    start: datetime,
    end: datetime,
    is_ca: bool,
) -> bytes:
    # X.509 counts whole seconds; truncating here keeps the dates we return exact.
    start = start.replace(microsecond=0)
    end = end.replace(microsecond=0)
    if issuer is not None:
        end = min(end, issuer.validity.end)
    DatePeriod(start, end)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name, _type=_ASN1Type.BMPString)]
    )
    issuer_public = issuer.public_key if issuer is not None else issuer_key.public_key()
    subject_spki = spki_der(subject_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(_cryptography_name(issuer.subject) if issuer is not None else subject)
        .public_key(subject_key)
        .serial_number(secrets.randbits(63) + 1)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), critical=True
        )
        .add_extension(
            x509.AuthorityKeyIdentifier(
                hashlib.sha256(spki_der(issuer_public)).digest(), None, None
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier(hashlib.sha256(subject_spki).digest()), critical=False
        )
    )
    certificate = builder.sign(issuer_key, hashes.SHA256(), rsa_padding=_pss())
    return certificate.public_bytes(Encoding.DER)


def issue_organisation_certificate(
    name: str, private_key: rsa.RSAPrivateKey, start: datetime, end: datetime
) -> bytes:
    """Self-issue the organisation's CA certificate (DER) for the domain ``name``."""
    key_spec(private_key.public_key())
    return _issue(
        common_name=name,
        subject_key=private_key.public_key(),
        issuer_key=private_key,
        issuer=None,
        start=start,
        end=end,
        is_ca=True,
    )


def issue_member_certificate(
    user_name: str | None,
    member_public_key: rsa.RSAPublicKey,
    organisation_certificate: bytes,
    organisation_private_key: rsa.RSAPrivateKey,
    start: datetime,
    end: datetime,
) -> bytes:
    """Issue a member certificate (DER); ``user_name`` None makes a bot. The end is capped at
    the organisation certificate's."""
    if user_name is not None:
        validate_user_name(user_name)
    issuer = load_certificate(organisation_certificate, "Organisation certificate", issuer=True)
    if not issuer.is_ca:
        raise CertificateError("Organisation certificate is not a CA")
    return _issue(
        common_name=user_name if user_name is not None else BOT_NAME,
        subject_key=member_public_key,
        issuer_key=organisation_private_key,
        issuer=issuer,
        start=start,
        end=end,
        is_ca=False,
    )
