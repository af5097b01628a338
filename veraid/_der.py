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
