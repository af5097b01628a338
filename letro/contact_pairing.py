"""The VeraId contact pairing messages: ``ContactPairingRequest`` and ``ContactPairingFailure``.

Both are DER, with IMPLICIT context tags, as the original server and Letro for Android
write them. Parsing is strict: trailing bytes, indefinite or non-minimal lengths and any
re-encoding difference are refused, so each value has exactly one accepted encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from asn1crypto import core, keys

from letro.errors import LetroProtocolError

# The Letro service OID that contact pairing requests are signed for.
LETRO_SERVICE_OID: Final = "1.3.6.1.4.1.58708.2.0"


class MalformedContactPairingRequest(LetroProtocolError):
    """The plaintext of a contact pairing request is not a DER ``ContactPairingRequest``."""


class ContactPairingFailureReason(IntEnum):
    INVALID_REQUESTER_VERAID = 0
    INVALID_TARGET_VERAID = 1
    INVALID_REQUESTER_AWALA_KEY = 2


class _ContactPairingRequest(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declarative schema
        ("requester_awala_endpoint_public_key", keys.PublicKeyInfo, {"implicit": 0}),
        ("target_veraid_id", core.UTF8String, {"implicit": 1}),
    ]


class _ContactPairingFailure(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declarative schema
        ("target_veraid_id", core.UTF8String, {"implicit": 0}),
        ("reason", core.Integer, {"implicit": 1}),
    ]


@dataclass(frozen=True, slots=True)
class ContactPairingRequest:
    """The plaintext a requester signs: its Awala identity key and the id it wants to pair with."""

    requester_endpoint_key: bytes  # DER SubjectPublicKeyInfo, as received
    target_veraid_id: str


def parse_contact_pairing_request(der: bytes) -> ContactPairingRequest:
    """Parse a DER ``ContactPairingRequest``; raise MalformedContactPairingRequest otherwise."""
    try:
        value = _ContactPairingRequest.load(der, strict=True)
        key = value["requester_awala_endpoint_public_key"].untag().dump()
        target = value["target_veraid_id"].native
        canonical = value.dump(force=True) == der
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, UnicodeError) as error:
        raise MalformedContactPairingRequest(
            f"Not a ContactPairingRequest: {type(error).__name__}"
        ) from None
    if not canonical:
        raise MalformedContactPairingRequest("ContactPairingRequest is not in DER")
    if not isinstance(target, str):
        raise MalformedContactPairingRequest("ContactPairingRequest has no target id")
    return ContactPairingRequest(key, target)


def serialise_contact_pairing_request(
    requester_endpoint_key: bytes, target_veraid_id: str
) -> bytes:
    """DER-encode a ``ContactPairingRequest`` (for tests and tools; agents produce them)."""
    spki = keys.PublicKeyInfo.load(requester_endpoint_key)
    value = _ContactPairingRequest(
        {"requester_awala_endpoint_public_key": spki, "target_veraid_id": target_veraid_id}
    )
    der: bytes = value.dump(force=True)
    return der


def serialise_contact_pairing_failure(
    target_veraid_id: str, reason: ContactPairingFailureReason
) -> bytes:
    """DER-encode the ``ContactPairingFailure`` sent back to a refused requester."""
    value = _ContactPairingFailure({"target_veraid_id": target_veraid_id, "reason": int(reason)})
    der: bytes = value.dump(force=True)
    return der


def parse_contact_pairing_failure(der: bytes) -> tuple[str, ContactPairingFailureReason]:
    """Decode a ``ContactPairingFailure`` (what an agent does; used by the tests)."""
    value = _ContactPairingFailure.load(der, strict=True)
    return value["target_veraid_id"].native, ContactPairingFailureReason(value["reason"].native)
