"""CMS SignedData as VeraId uses it (RFC 5652): one signer, RSA-PSS, VeraId signed attributes.

Facts from ``@relaycorp/veraid`` 3.1.2 ``utils/cms/SignedData.js``: SignedData and SignerInfo
version 1, the signer named by issuer and serial number, SHA-256 digests, signed attributes
content type, message digest, then the VeraId ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from asn1crypto import algos, core
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from veraid import _der as der
from veraid._algorithms import RSA_PSS_SHA256, hash_algorithm, signature_scheme
from veraid._asn1 import (
    ASN1_ERRORS,
    OID_DATA,
    OID_SIGNED_DATA,
    ContentInfo,
    SignedData,
    encapsulated_content,
    explicit_octet_string,
    refuse_extra_fields,
)
from veraid._errors import InvalidSignatureError, LimitError, MalformedError
from veraid._limits import MAX_SIGNED_ATTRIBUTES, MAX_SIGNED_DATA_CERTIFICATES
from veraid._pki import Certificate, DistinguishedName, distinguished_name


@dataclass(frozen=True, slots=True)
class ParsedSignedData:
    """The parts of a SignedData value that VeraId verification reads."""

    certificates: tuple[bytes, ...]
    signer_issuer: DistinguishedName
    signer_serial: int  # compared by value: veraid-js may pad it, as in its certificates
    signed_attributes: bytes  # DER, tagged as a SET, as signed
    attributes: dict[str, tuple[Any, ...]]  # OID -> asn1crypto values
    digest_algorithm: str
    signature_padding: padding.AsymmetricPadding
    signature_hash: hashes.HashAlgorithm
    signature: bytes
    encapsulated: bytes | None


def _certificates(signed_data: SignedData) -> list[Any]:
    # Each certificate is loaded in turn to find the signer's: bound how many.
    certificates = list(signed_data["certificates"] or ())
    if len(certificates) > MAX_SIGNED_DATA_CERTIFICATES:
        raise LimitError(
            f"SignedData has {len(certificates)} certificates"
            f" (at most {MAX_SIGNED_DATA_CERTIFICATES})"
        )
    return certificates


def parse_signed_data(content_info: ContentInfo) -> ParsedSignedData:
    """Extract what verification needs; MalformedError for anything VeraId does not use."""
    try:
        if content_info["content_type"].dotted != OID_SIGNED_DATA:
            raise MalformedError("Signature is not a CMS SignedData value")
        signed_data = content_info["content"]
        for sequence in (content_info, signed_data, signed_data["encap_content_info"]):
            refuse_extra_fields(sequence)
        if signed_data["version"].native != "v1":
            raise MalformedError("SignedData version must be 1")
        certificates = [certificate.dump() for certificate in _certificates(signed_data)]
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:
            raise MalformedError(f"SignedData must have one signer (got {len(signer_infos)})")
        signer_info = signer_infos[0]
        refuse_extra_fields(signer_info)
        sid = signer_info["sid"]
        if sid.name != "issuer_and_serial_number":
            raise MalformedError("The signer must be identified by issuer and serial number")
        refuse_extra_fields(sid.chosen)
        encap = signed_data["encap_content_info"]
        if encap["content_type"].dotted != OID_DATA:
            raise MalformedError("SignedData must encapsulate id-data")
        content = encap["content"]
        encapsulated = (
            None if isinstance(content, core.Void) else encapsulated_content(content.dump())
        )
        signed_attrs = signer_info["signed_attrs"]
        if isinstance(signed_attrs, core.Void):
            raise InvalidSignatureError("The signature has no signed attributes")
        if len(signed_attrs) > MAX_SIGNED_ATTRIBUTES:
            raise LimitError(
                f"The signature has {len(signed_attrs)} signed attributes"
                f" (at most {MAX_SIGNED_ATTRIBUTES})"
            )
        attributes: dict[str, tuple[Any, ...]] = {}
        for attribute in signed_attrs:
            oid = attribute["type"].dotted
            if oid in attributes:
                raise MalformedError(f"Signed attribute {oid} appears twice")
            attributes[oid] = tuple(attribute["values"])
        scheme, scheme_hash = signature_scheme(
            signer_info["signature_algorithm"], InvalidSignatureError
        )
        return ParsedSignedData(
            certificates=tuple(certificates),
            signer_issuer=distinguished_name(sid.chosen["issuer"]),
            signer_serial=sid.chosen["serial_number"].native,
            signed_attributes=b"\x31" + signed_attrs.dump()[1:],
            attributes=attributes,
            digest_algorithm=signer_info["digest_algorithm"]["algorithm"].native,
            signature_padding=scheme,
            signature_hash=scheme_hash,
            signature=signer_info["signature"].native,
            encapsulated=encapsulated,
        )
    except ASN1_ERRORS as error:
        raise MalformedError(f"SignedData is malformed: {error}") from None


def verify_signed_data(parsed: ParsedSignedData, plaintext: bytes, signer: Certificate) -> None:
    """Check the signature over the signed attributes and the message digest of ``plaintext``."""
    try:
        content_types = parsed.attributes.get("1.2.840.113549.1.9.3", ())
        digests = parsed.attributes.get("1.2.840.113549.1.9.4", ())
        if len(content_types) != 1 or content_types[0].dotted != OID_DATA:
            raise InvalidSignatureError("The content type attribute must be id-data")
        if len(digests) != 1:
            raise InvalidSignatureError("The message digest attribute is missing")
        expected_digest = digests[0].native
    except ASN1_ERRORS as error:
        raise MalformedError(f"Signed attribute is malformed: {error}") from None
    digest_hash = hash_algorithm(parsed.digest_algorithm, InvalidSignatureError)
    digest = hashlib.new(digest_hash.name, plaintext).digest()
    if digest != expected_digest:
        raise InvalidSignatureError("The plaintext does not match the signed digest")
    try:
        signer.public_key.verify(
            parsed.signature,
            parsed.signed_attributes,
            parsed.signature_padding,
            parsed.signature_hash,
        )
    except (InvalidSignature, ValueError):
        raise InvalidSignatureError("The CMS signature does not verify") from None


_SHA256 = algos.DigestAlgorithm({"algorithm": "sha256"}).dump()
_OID_DATA = core.ObjectIdentifier(OID_DATA).dump()
_OID_SIGNED_DATA = core.ObjectIdentifier(OID_SIGNED_DATA).dump()
_OID_CONTENT_TYPE = core.ObjectIdentifier("1.2.840.113549.1.9.3").dump()
_OID_MESSAGE_DIGEST = core.ObjectIdentifier("1.2.840.113549.1.9.4").dump()


def _attribute(oid: bytes, value: bytes) -> bytes:
    return der.tlv(der.SEQUENCE, oid, der.tlv(der.SET, value))


def sign_signed_data(
    plaintext: bytes,
    private_key: rsa.RSAPrivateKey,
    signer: Certificate,
    *,
    certificates: tuple[bytes, ...],
    extra_attributes: list[tuple[str, bytes]],
    encapsulate: bool,
) -> bytes:
    """The DER ContentInfo(SignedData) signing ``plaintext`` with RSA-PSS (SHA-256, 32-byte
    salt); ``extra_attributes`` are (OID, DER value) signed attributes."""
    attributes = [
        _attribute(_OID_CONTENT_TYPE, _OID_DATA),
        _attribute(
            _OID_MESSAGE_DIGEST, der.tlv(der.OCTET_STRING, hashlib.sha256(plaintext).digest())
        ),
    ]
    attributes += [
        _attribute(core.ObjectIdentifier(oid).dump(), value) for oid, value in extra_attributes
    ]
    # Signed as a DER SET, sent as [0] IMPLICIT (RFC 5652 §5.4).
    signed_attributes = der.set_of(*attributes)
    signature = private_key.sign(
        signed_attributes,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    signer_info = der.tlv(
        der.SEQUENCE,
        der.integer(1),
        # The certificate's own encodings: pkijs matches the serial byte for byte.
        der.tlv(der.SEQUENCE, signer.issuer, signer.serial),
        _SHA256,
        b"\xa0" + signed_attributes[1:],
        RSA_PSS_SHA256,
        der.tlv(der.OCTET_STRING, signature),
    )
    content = [explicit_octet_string(plaintext)] if encapsulate else []
    signed_data = der.tlv(
        der.SEQUENCE,
        der.integer(1),
        der.tlv(der.SET, _SHA256),
        der.tlv(der.SEQUENCE, _OID_DATA, *content),
        der.tlv(0xA0, *certificates) if certificates else b"",
        der.tlv(der.SET, signer_info),
    )
    return der.tlv(der.SEQUENCE, _OID_SIGNED_DATA, der.tlv(0xA0, signed_data))
