"""ASN.1 structures of VeraId, declared once as asn1crypto classes, and strict decoding.

Every tag is IMPLICIT and every structure DER. Sources: the VeraId V1 specification
(https://veraid.net/spec, appendix A) and the reference implementation
``@relaycorp/veraid`` 3.1.2 (``build/lib/lib/schemas/*``), which also fixes the details the
specification leaves open (``version`` is always encoded, ``SignatureBundle`` has four fields).
"""

from __future__ import annotations

from typing import TypeVar

from asn1crypto import cms, core, parser, x509

from veraid import _der as der
from veraid._errors import MalformedError

OID_SIGNATURE_METADATA = "1.3.6.1.4.1.58708.1.0"
OID_TEST_SERVICE = "1.3.6.1.4.1.58708.1.1"
OID_MEMBER_ATTRIBUTION = "1.3.6.1.4.1.58708.1.2"
OID_DATA = "1.2.840.113549.1.7.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"


class DnssecChain(core.SetOf):  # type: ignore[misc]
    """Each item is one DNS response message in wire format. Source: spec §A, veraid-js
    ``DnssecChainSchema``."""

    _child_spec = core.OctetString


class MemberIdBundle(core.Sequence):  # type: ignore[misc]
    """Source: spec §A ``MemberIdBundle``; veraid-js ``MemberIdBundleSchema``."""

    _fields = [  # noqa: RUF012 - asn1crypto's declarative schema
        ("version", core.Integer, {"implicit": 0}),
        ("dnssec_chain", DnssecChain, {"implicit": 1}),
        ("organisation_certificate", x509.Certificate, {"implicit": 2}),
        ("member_certificate", x509.Certificate, {"implicit": 3}),
    ]


class EncapsulatedContentInfo(core.Sequence):  # type: ignore[misc]
    """RFC 5652 §5.2, with ``eContent`` left undecoded: veraid-js encapsulates plaintext as a
    constructed (BER) OCTET STRING, which asn1crypto's own class refuses."""

    _fields = [  # noqa: RUF012
        ("content_type", cms.ContentType),
        ("content", core.Any, {"explicit": 0, "optional": True}),
    ]


class CertificateSet(core.SetOf):  # type: ignore[misc]
    """RFC 5652 §10.2.3 ``CertificateSet``, restricted to plain X.509 certificates (the only
    choice VeraId uses)."""

    _child_spec = x509.Certificate


class SignedData(core.Sequence):  # type: ignore[misc]
    """RFC 5652 §5.1 ``SignedData``."""

    _fields = [  # noqa: RUF012
        ("version", cms.CMSVersion),
        ("digest_algorithms", cms.DigestAlgorithms),
        ("encap_content_info", EncapsulatedContentInfo),
        ("certificates", CertificateSet, {"implicit": 0, "optional": True}),
        ("crls", cms.RevocationInfoChoices, {"implicit": 1, "optional": True}),
        ("signer_infos", cms.SignerInfos),
    ]


class ContentInfo(core.Sequence):  # type: ignore[misc]
    """RFC 5652 §3 ``ContentInfo``, restricted to SignedData."""

    _fields = [  # noqa: RUF012
        ("content_type", cms.ContentType),
        ("content", SignedData, {"explicit": 0}),
    ]


class SignatureBundle(core.Sequence):  # type: ignore[misc]
    """Source: spec §A ``SignatureBundle``; veraid-js ``SignatureBundleSchema`` (no member
    certificate field: it travels in ``SignedData.certificates``)."""

    _fields = [  # noqa: RUF012
        ("version", core.Integer, {"implicit": 0}),
        ("dnssec_chain", DnssecChain, {"implicit": 1}),
        ("organisation_certificate", x509.Certificate, {"implicit": 2}),
        ("signature", ContentInfo, {"implicit": 3}),
    ]


class DatePeriod(core.Sequence):  # type: ignore[misc]
    """Source: spec §A ``DatePeriod`` (both ends inclusive)."""

    _fields = [  # noqa: RUF012
        ("start", core.GeneralizedTime, {"implicit": 0}),
        ("end", core.GeneralizedTime, {"implicit": 1}),
    ]


class SignatureMetadata(core.Sequence):  # type: ignore[misc]
    """Source: spec §A ``SignatureMetadata``, the value of the signed attribute
    1.3.6.1.4.1.58708.1.0."""

    _fields = [  # noqa: RUF012
        ("service_oid", core.ObjectIdentifier, {"implicit": 0}),
        ("validity_period", DatePeriod, {"implicit": 1}),
    ]


_T = TypeVar("_T", bound=core.Asn1Value)

# Exceptions asn1crypto raises on malformed input; translated at each decoding boundary.
ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


def load_strict(spec: type[_T], data: bytes, what: str) -> _T:
    """Decode ``data`` as ``spec``, refusing trailing bytes.

    asn1crypto parses children lazily: callers read them inside ``except ASN1_ERRORS``.
    """
    try:
        value: _T = spec.load(data, strict=True)
        len(value)
    except ASN1_ERRORS as error:
        raise MalformedError(f"{what} is malformed: {error}") from None
    return value


def refuse_extra_fields(value: core.Sequence) -> list[core.Asn1Value]:
    """Refuse elements after the last field of a SEQUENCE, which asn1crypto keeps silently
    (even with ``strict=True``), and build every field, which checks its tag and form
    (asn1crypto builds lazily). Returns the fields. Call inside ``except ASN1_ERRORS``."""
    if len(value) > len(value._fields):
        raise ValueError(f"{type(value).__name__} has elements after its last field")
    return [value[index] for index in range(len(value._fields))]


def refuse_extra_fields_deep(value: core.Asn1Value) -> None:
    """``refuse_extra_fields`` at every depth of a (small) value: parses all of it."""
    children: list[core.Asn1Value]
    if isinstance(value, core.Sequence):
        children = refuse_extra_fields(value)
    elif isinstance(value, core.SequenceOf | core.SetOf):
        children = list(value)
    elif isinstance(value, core.Choice):
        children = [value.chosen]
    else:
        return
    for child in children:
        refuse_extra_fields_deep(child)


def der_from_implicit(value: core.Asn1Value) -> bytes:
    """The original DER of a SEQUENCE that a schema re-tagged IMPLICITly (header rebuilt)."""
    contents: bytes = value.contents
    return der.tlv(der.SEQUENCE, contents)


def encapsulated_content(explicit: bytes) -> bytes:
    """The value of ``[0] EXPLICIT OCTET STRING``, primitive or constructed (BER)."""
    class_, constructed, tag, contents = _parse_one(explicit)
    if (class_, constructed, tag) != (2, 1, 0):
        raise MalformedError("Encapsulated content must be tagged [0] EXPLICIT")
    class_, constructed, tag, contents = _parse_one(contents)
    if class_ != 0 or tag != 4:
        raise MalformedError("Encapsulated content is not an OCTET STRING")
    if not constructed:
        return contents
    return b"".join(_octet_string_segments(contents))


def explicit_octet_string(value: bytes) -> bytes:
    """``[0] EXPLICIT OCTET STRING`` in DER (how this library encapsulates plaintext)."""
    return der.tlv(0xA0, der.tlv(der.OCTET_STRING, value))


def _parse_one(encoded: bytes) -> tuple[int, int, int, bytes]:
    try:
        class_, constructed, tag, _header, contents, _trailer = parser.parse(encoded, strict=True)
    except ValueError as error:
        raise MalformedError(f"Encapsulated content is malformed: {error}") from None
    return class_, constructed, tag, bytes(contents)


def _octet_string_segments(contents: bytes, depth: int = 0) -> list[bytes]:
    if depth > 8:
        raise MalformedError("Encapsulated content nests too deeply")
    segments: list[bytes] = []
    pointer = 0
    while pointer < len(contents):
        try:
            info, pointer = parser._parse(contents, len(contents), pointer)
        except ValueError as error:
            raise MalformedError(f"Encapsulated content is malformed: {error}") from None
        class_, constructed, tag, _header, segment, _trailer = info
        if class_ != 0 or tag != 4:
            raise MalformedError("Encapsulated content segment is not an OCTET STRING")
        if constructed:
            segments.extend(_octet_string_segments(segment, depth + 1))
        else:
            segments.append(bytes(segment))
    return segments
