"""DER by hand: writing it by concatenation, and the strictness checks asn1crypto lacks.

Building large values with asn1crypto re-serialises every nested certificate several times;
these helpers put already-encoded parts together instead. ``tests/test_veraid_bundles.py``
checks that what they produce decodes with the schemas in ``_asn1`` and re-encodes to the
same bytes.

asn1crypto decodes BER leniently even with ``strict=True`` (which only refuses trailing
bytes): the ``check_*`` functions refuse what DER forbids in the bytes as received.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
SEQUENCE = 0x30
SET = 0x31


def length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def tlv(tag: int, *parts: bytes) -> bytes:
    """One element with the single-byte ``tag`` around the concatenated ``parts``."""
    contents = b"".join(parts)
    return bytes([tag]) + length(len(contents)) + contents


def set_of(*elements: bytes) -> bytes:
    """A SET OF: DER (X.690 §11.6) orders its encoded elements as byte strings."""
    return tlv(SET, *sorted(elements))


def integer(value: int) -> bytes:
    size = value.bit_length() // 8 + 1  # room for the sign bit
    return tlv(INTEGER, value.to_bytes(size, "big", signed=True))


def contents_of(encoded: bytes) -> bytes:
    """The contents of one DER element (its header dropped), e.g. to re-tag it IMPLICITly."""
    size = encoded[1]
    if size < 0x80:
        return encoded[2:]
    return encoded[2 + (size & 0x7F) :]


_X509_V3 = b"\xa0\x03\x02\x01\x02"  # tbsCertificate's first field: [0] EXPLICIT INTEGER 2


class EncodingError(ValueError):
    """Raised by the ``check_*`` functions; callers translate it."""


class TooManyElementsError(EncodingError):
    """Raised past ``max_elements`` by ``check_definite_lengths`` and ``check_certificate``."""


# (tag, offset of the element, start and end of its contents)
_Element = tuple[int, int, int, int]


def _elements(
    data: bytes,
    *,
    skip_certificates: bool = False,
    span: tuple[int, int] | None = None,
    deep: bool = True,
    max_elements: int | None = None,
) -> Iterator[_Element]:
    """Every element in ``data`` (or in ``span`` of it), walking into constructed ones unless
    not ``deep``, with its length checked: definite, in its shortest form (X.690 §10.1),
    within the enclosing element. asn1crypto accepts indefinite and non-minimal lengths even
    in strict mode. The contents of primitive elements (DNS messages in OCTET STRINGs, DER in
    extension values) are not looked into.

    ``max_elements``: stop with ``TooManyElementsError`` at the next element past it, before
    reading its header (each element costs this walk, then asn1crypto, a few microseconds of
    Python).
    """
    count = 0
    spans = [span or (0, len(data))]
    while spans:
        position, end = spans.pop()
        while position < end:
            count += 1
            if max_elements is not None and count > max_elements:
                raise TooManyElementsError(f"more than {max_elements} DER elements")
            offset = position
            tag = data[position]
            position += 1
            if tag & 0x1F == 0x1F:  # high tag number: base-128 continuation octets
                while position < end and data[position] & 0x80:
                    position += 1
                position += 1
            if position >= end:
                raise EncodingError("truncated header")
            first = data[position]
            position += 1
            if first == 0x80:
                raise EncodingError("indefinite length")
            if first < 0x80:
                size = first
            else:
                octets = first & 0x7F
                if octets > 4 or position + octets > end:
                    raise EncodingError("length too long")
                size = int.from_bytes(data[position : position + octets], "big")
                if size < 0x80 or data[position] == 0:
                    raise EncodingError("length not in its shortest form")
                position += octets
            if position + size > end:
                raise EncodingError("length beyond the enclosing element")
            yield tag, offset, position, position + size
            if (
                deep
                and tag & 0x20
                and not (skip_certificates and _is_certificate(data, position, position + size))
            ):
                spans.append((position, position + size))
            position += size


def check_definite_lengths(data: bytes, max_elements: int | None = None) -> None:
    """Refuse indefinite and non-minimal lengths anywhere in ``data`` (a bundle).

    Certificates inside are skipped: ``check_certificate`` checks them, more strictly, when
    they are loaded (and ``MAX_CERTIFICATE_BYTES`` bounds that walk).

    ``max_elements``: refuse more elements than that (certificates count as one).
    """
    for _element in _elements(data, skip_certificates=True, max_elements=max_elements):
        pass


def check_x509_value(data: bytes) -> None:
    """Strict DER for an X.509 structure (an extension value, say): lengths as in
    ``check_definite_lengths``, and the universal primitives X.509 uses in their DER form."""
    _check_primitives(data, lax_integer_at=None)


def check_certificate(data: bytes, max_elements: int | None = None) -> None:
    """``check_x509_value`` for an X.509 v3 certificate, but for one deviation of real issuers:
    the serial number may have redundant leading zero octets.

    ``@relaycorp/veraid`` draws a serial as 64 random bits and clears the sign bit only, so
    about one certificate in 512 starts 0x00 then an octet below 0x80, which DER forbids
    (X.690 §8.3.2) and pkijs accepts. Only that padding of a positive serial is let through.

    ``max_elements``: refuse more elements than that, as ``check_definite_lengths`` does.
    """
    _check_primitives(data, lax_integer_at=_serial_offset(data), max_elements=max_elements)


def _header_size(data: bytes, offset: int) -> int:
    """The size of the header of the element at ``offset`` (low tag number, checked length)."""
    if offset + 1 >= len(data):
        raise EncodingError("truncated header")
    first = data[offset + 1]
    return 2 if first < 0x80 else 2 + (first & 0x7F)


def _serial_offset(data: bytes) -> int:
    """Where the serialNumber of a certificate is: right after tbsCertificate's version."""
    if not data or data[0] != SEQUENCE:
        raise EncodingError("a certificate is a SEQUENCE")
    tbs = _header_size(data, 0)
    version = tbs + _header_size(data, tbs)
    if data[tbs] != SEQUENCE or data[version : version + len(_X509_V3)] != _X509_V3:
        raise EncodingError("not an X.509 v3 certificate")
    return version + len(_X509_V3)


# X.509 times are UTC and whole seconds (RFC 5280 §4.1.2.5), so only these forms are DER.
_TIME_FORMATS = {
    UTC_TIME: re.compile(rb"[0-9]{12}Z"),
    GENERALIZED_TIME: re.compile(rb"[0-9]{14}Z"),
}


def _check_primitives(
    data: bytes, *, lax_integer_at: int | None, max_elements: int | None = None
) -> None:
    for tag, offset, start, end in _elements(data, max_elements=max_elements):
        contents = data[start:end]
        if tag & 0xE0 == 0x20 and tag not in (SEQUENCE, SET):
            # Universal types other than SEQUENCE and SET are primitive in DER (X.690 §10.2).
            raise EncodingError(f"constructed encoding of universal type {tag & 0x1F}")
        if tag == SET:
            _check_set_order(data, start, end, max_elements)
        elif tag == INTEGER:
            _check_integer(contents, lax=offset == lax_integer_at)
        elif tag == BOOLEAN:
            # Every BOOLEAN of X.509 is DEFAULT FALSE, which DER never encodes (X.690 §11.5).
            if contents != b"\xff":
                raise EncodingError("BOOLEAN not TRUE as 0xFF (FALSE is the default)")
        elif tag == BIT_STRING:
            # Signatures and keys: whole octets, so no unused bits.
            if contents[:1] != b"\x00":
                raise EncodingError("BIT STRING not octet-aligned")
        elif tag == NULL:
            if contents:
                raise EncodingError("NULL with contents")
        elif tag == OBJECT_IDENTIFIER:
            _check_object_identifier(contents)
        elif tag in _TIME_FORMATS and not _TIME_FORMATS[tag].fullmatch(contents):
            raise EncodingError("time not in the DER form YYMMDDHHMMSSZ / YYYYMMDDHHMMSSZ")


def _check_set_order(data: bytes, start: int, end: int, max_elements: int | None) -> None:
    """A DER SET OF lists its elements in the order of their encodings (X.690 §11.6)."""
    walk = _elements(data, span=(start, end), deep=False, max_elements=max_elements)
    elements = [data[offset:stop] for _tag, offset, _, stop in walk]
    if elements != sorted(elements):
        raise EncodingError("SET OF not in DER order")


def _check_integer(contents: bytes, *, lax: bool) -> None:
    """``lax`` lets a positive value through with redundant leading zero octets."""
    if not contents:
        raise EncodingError("empty INTEGER")
    if len(contents) > 1 and (
        (contents[0] == 0 and contents[1] < 0x80 and not lax)
        or (contents[0] == 0xFF and contents[1] >= 0x80)
    ):
        raise EncodingError("INTEGER not in its shortest form")


def _check_object_identifier(contents: bytes) -> None:
    if not contents or contents[-1] & 0x80:
        raise EncodingError("truncated OBJECT IDENTIFIER")
    for index, octet in enumerate(contents):
        if octet == 0x80 and (index == 0 or not contents[index - 1] & 0x80):
            raise EncodingError("OBJECT IDENTIFIER arc not in its shortest form")


def _is_certificate(data: bytes, start: int, end: int) -> bool:
    """Whether the contents from ``start`` look like an X.509 v3 certificate's (skipped in
    bundles: ``check_certificate`` walks them when they are loaded)."""
    if end - start < 12 or data[start] != SEQUENCE:
        return False
    first = data[start + 1]
    header = 2 if first < 0x80 else 2 + (first & 0x7F)
    return data[start + header : start + header + 5] == _X509_V3
