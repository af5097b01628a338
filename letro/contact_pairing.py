"""VeraId contact pairing: its messages, and what a received request earns.

``ContactPairingRequest`` and ``ContactPairingFailure`` are DER, with IMPLICIT context tags,
as the original server and Letro for Android write them. Parsing is strict: trailing bytes,
indefinite or non-minimal lengths and any re-encoding difference are refused, so each value
has exactly one accepted encoding.

:func:`check_contact_pairing_request` is the one place that turns the bytes of a request
into a verdict: a request that may be matched, a refusal the protocol answers with a
``ContactPairingFailure``, or a drop (nothing to answer). The caller brings the clock and
the verification cache; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Final

from asn1crypto import core, keys

import veraid
from awala.private_endpoint_conn_params import InvalidPrivateEndpointConnParams, endpoint_id_of_key
from letro.errors import InvalidVeraidId, LetroProtocolError
from letro.veraid_ids import pairing_key

# The Letro service OID that contact pairing requests are signed for.
LETRO_SERVICE_OID: Final = "1.3.6.1.4.1.58708.2.0"
# A request stays pending up to 90 days, and so does its signature: the original accepts
# any bundle valid at some point of the last 90 days.
SIGNATURE_WINDOW: Final = veraid.MAX_TTL_OVERRIDE


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


@dataclass(frozen=True, slots=True)
class VerifiedPairingRequest:
    """A request whose signature verified and that passed every check: it may be matched.

    The ids are in their matching form (:func:`letro.veraid_ids.pairing_key`).
    """

    requester_veraid_id: str
    target_veraid_id: str
    requester_endpoint_key: bytes  # DER SubjectPublicKeyInfo of the sender's Awala endpoint
    signature_bundle: bytes  # forwarded untouched to the contact on a match


@dataclass(frozen=True, slots=True)
class PairingRefusal:
    """A verified request that fails a check the protocol answers with a failure message."""

    reason: ContactPairingFailureReason
    explanation: str
    failure_message: bytes  # the DER ContactPairingFailure for the sender


@dataclass(frozen=True, slots=True)
class PairingDrop:
    """A request that does not verify: the protocol defines no answer, so none is sent."""

    explanation: str


PairingVerdict = VerifiedPairingRequest | PairingRefusal | PairingDrop


def check_contact_pairing_request(
    bundle: bytes,
    sender_endpoint_id: str,
    now: datetime,
    *,
    trust_anchors: Sequence[veraid.TrustAnchor],
    cache: veraid.VerificationCache | None = None,
) -> PairingVerdict:
    """Verify the SignatureBundle of a request sent by ``sender_endpoint_id`` and judge it.

    The checks run in the original server's order, so the same request earns the same
    failure reason. No exception escapes for any bytes: whatever is wrong is a verdict.
    """
    try:
        verification = veraid.verify_signature_bundle(
            bundle,
            LETRO_SERVICE_OID,
            veraid.DatePeriod(now - SIGNATURE_WINDOW, now),
            trust_anchors=trust_anchors,
            cache=cache,
        )
    except veraid.VeraidError as error:
        return PairingDrop(f"Invalid VeraId SignatureBundle ({type(error).__name__}: {error})")
    try:
        request = parse_contact_pairing_request(verification.plaintext)
    except MalformedContactPairingRequest as error:
        return PairingDrop(str(error))
    return _judge(verification.member, request, sender_endpoint_id, bundle)


def _judge(
    member: veraid.Member, request: ContactPairingRequest, sender_endpoint_id: str, bundle: bytes
) -> PairingVerdict:
    target = request.target_veraid_id

    def refuse(reason: ContactPairingFailureReason, explanation: str) -> PairingRefusal:
        return PairingRefusal(
            reason, explanation, serialise_contact_pairing_failure(target, reason)
        )

    if member.user is None:
        return refuse(
            ContactPairingFailureReason.INVALID_REQUESTER_VERAID,
            "The requester is a VeraId organisation bot",
        )
    try:
        endpoint_id = endpoint_id_of_key(request.requester_endpoint_key)
    except InvalidPrivateEndpointConnParams:
        return refuse(
            ContactPairingFailureReason.INVALID_REQUESTER_AWALA_KEY,
            "The requester's Awala id key is invalid",
        )
    if endpoint_id != sender_endpoint_id:
        return refuse(
            ContactPairingFailureReason.INVALID_REQUESTER_AWALA_KEY,
            "The requester's Awala id key is not the sender's",
        )
    try:
        target_key = pairing_key(target)
    except InvalidVeraidId:
        return refuse(
            ContactPairingFailureReason.INVALID_TARGET_VERAID,
            "The target is not a VeraId user id",
        )
    try:
        requester_key = pairing_key(str(member))
    except InvalidVeraidId:
        # VeraId accepts some organisation names that Letro's id rules (those of the
        # original server) do not; such a requester could never be anyone's target.
        return refuse(
            ContactPairingFailureReason.INVALID_REQUESTER_VERAID,
            "The requester's VeraId id is not one Letro accepts",
        )
    if requester_key == target_key:
        # A pair of one can never complete; say so instead of waiting 90 days.
        return refuse(
            ContactPairingFailureReason.INVALID_TARGET_VERAID, "The target is the requester"
        )
    return VerifiedPairingRequest(requester_key, target_key, request.requester_endpoint_key, bundle)
