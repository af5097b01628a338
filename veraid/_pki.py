"""Organisation and member certificates: issuance, decoding and the member-to-organisation path.

Facts from ``@relaycorp/veraid`` 3.1.2 (``utils/x509/Certificate.js``, ``pki/*.js``): X.509 v3,
CN as BMPString, critical BasicConstraints, key identifiers are SHA-256 digests of the SPKI,
RSA-PSS signatures with SHA-256, and a member certificate never outlives its issuer.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from veraid._asn1 import ASN1_ERRORS
from veraid._errors import (
    CertificateError,
    InvalidNameError,
    LimitError,
    MalformedError,
    UnsupportedKeyError,
)
from veraid._limits import MAX_CERTIFICATE_BYTES, MAX_RSA_EXPONENT_BITS
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


@dataclass(frozen=True, slots=True)
class Certificate:
    """A decoded VeraId certificate, with what verification needs precomputed."""

    der: bytes
    x509: x509.Certificate
    common_name: str
    validity: DatePeriod
    public_key: rsa.RSAPublicKey
    spki: bytes
    is_ca: bool


def _is_ca(certificate: x509.Certificate, der: bytes) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    except ValueError:
        # cryptography refuses a pathLenConstraint beside cA false, which veraid-js writes
        # in member certificates; asn1crypto reads it.
        extensions = asn1_x509.Certificate.load(der, strict=True)["tbs_certificate"]["extensions"]
        for extension in extensions:
            if extension["extn_id"].native == "basic_constraints":
                return bool(extension["extn_value"].parsed["ca"].native)
        return False
    return constraints.value.ca


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


def load_certificate(der: bytes, what: str, *, issuer: bool = False) -> Certificate:
    """Decode a DER certificate; MalformedError or UnsupportedKeyError if unusable.

    ``issuer``: also read BasicConstraints (``is_ca`` is False otherwise).
    """
    if len(der) > MAX_CERTIFICATE_BYTES:
        # cryptography builds a Python object for every extension and name attribute.
        raise LimitError(f"{what} has {len(der)} bytes (at most {MAX_CERTIFICATE_BYTES})")
    try:
        certificate = x509.load_der_x509_certificate(der)
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        public_key = certificate.public_key()
        validity = DatePeriod(certificate.not_valid_before_utc, certificate.not_valid_after_utc)
        is_ca = _is_ca(certificate, der) if issuer else False
    except (*ASN1_ERRORS, UnsupportedAlgorithm) as error:
        raise MalformedError(f"{what} is malformed: {error}") from None
    if len(names) != 1 or not isinstance(names[0].value, str):
        raise MalformedError(f"{what} must have exactly one Common Name")
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise UnsupportedKeyError(f"{what} has a key other than RSA")
    _check_rsa_key(public_key, what)
    spki = spki_der(public_key)
    return Certificate(der, certificate, names[0].value, validity, public_key, spki, is_ca)


def signature_scheme(
    certificate: x509.Certificate,
) -> tuple[padding.AsymmetricPadding, hashes.HashAlgorithm]:
    """The padding and hash a certificate was signed with, honouring RSA-PSS parameters."""
    try:
        parameters = certificate.signature_algorithm_parameters
        hash_algorithm = certificate.signature_hash_algorithm
    except (ValueError, UnsupportedAlgorithm) as error:
        raise CertificateError(f"Unsupported certificate signature algorithm: {error}") from None
    if not isinstance(parameters, padding.PSS | padding.PKCS1v15) or hash_algorithm is None:
        raise CertificateError("Certificates must be signed with RSA")
    return parameters, hash_algorithm


def verify_issued_by(member: Certificate, organisation: Certificate) -> None:
    """Check that the organisation (a CA) issued the member certificate."""
    if not organisation.is_ca:
        raise CertificateError("Organisation certificate is not a CA")
    if member.x509.issuer != organisation.x509.subject:
        raise CertificateError("Member certificate was not issued by the organisation")
    scheme, hash_algorithm = signature_scheme(member.x509)
    try:
        organisation.public_key.verify(
            member.x509.signature, member.x509.tbs_certificate_bytes, scheme, hash_algorithm
        )
    except (InvalidSignature, ValueError):
        raise CertificateError(
            "Member certificate signature does not verify with the organisation key"
        ) from None


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
        .issuer_name(issuer.x509.subject if issuer is not None else subject)
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
