"""Writing DER by concatenation, for the structures this library produces often.

Building large values with asn1crypto re-serialises every nested certificate several times;
these helpers put already-encoded parts together instead. ``tests/test_veraid_bundles.py``
checks that what they produce decodes with the schemas in ``_asn1`` and re-encodes to the
same bytes.
"""

from __future__ import annotations

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
OCTET_STRING = 0x04


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


class EncodingError(ValueError):
    """Raised by ``check_definite_lengths``; callers translate it."""


class TooManyElementsError(EncodingError):
    """Raised by ``check_definite_lengths`` past ``max_elements``."""


def check_definite_lengths(data: bytes, max_elements: int | None = None) -> None:
    """Refuse indefinite and non-minimal lengths anywhere in ``data`` (X.690 §10.1), which
    asn1crypto accepts even in strict mode. The contents of primitive elements (e.g. DNS
    messages in OCTET STRINGs) and of certificates are not looked into.

    ``max_elements``: refuse more elements than that (each costs this walk, then asn1crypto,
    a few microseconds of Python).
    """
    elements = 0
    spans = [(0, len(data))]
    while spans:
        position, end = spans.pop()
        while position < end:
            elements += 1
            if max_elements is not None and elements > max_elements:
                raise TooManyElementsError(f"more than {max_elements} DER elements")
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
            if tag & 0x20 and not _is_certificate(data, position, position + size):
                spans.append((position, position + size))
            position += size


_X509_V3 = b"\xa0\x03\x02\x01\x02"  # tbsCertificate's first field: [0] EXPLICIT INTEGER 2


def _is_certificate(data: bytes, start: int, end: int) -> bool:
    """Whether the contents from ``start`` look like an X.509 v3 certificate's. Those are
    skipped: ``cryptography`` decodes certificates as strict DER anyway, and walking them
    would be most of the cost."""
    if end - start < 12 or data[start] != SEQUENCE:
        return False
    first = data[start + 1]
    header = 2 if first < 0x80 else 2 + (first & 0x7F)
    return data[start + header : start + header + 5] == _X509_V3
