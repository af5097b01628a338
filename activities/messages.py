"""The activity inputs shared by workflows and activities: small, serialisable dataclasses.

Binary content travels base64-encoded: Temporal's JSON converter would otherwise write
``bytes`` as an array of numbers, several times larger in every workflow history.

No ``from __future__ import annotations`` here or in ``workflows.pairing``: the converter
resolves a dataclass's type hints on every conversion, and string annotations made it
compile and evaluate each one again every time (a few percent of the worker's CPU).
"""

import base64
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OutgoingMessage:
    """One Awala service message to send, with the id it keeps across retries."""

    event_id: str
    sender_endpoint_id: str
    recipient_endpoint_id: str
    content_type: str
    content_b64: str
    creation_time: datetime
    expiry_time: datetime

    @property
    def content(self) -> bytes:
        return base64.b64decode(self.content_b64)


@dataclass(frozen=True)
class PendingPairingRequest:
    """A contact pairing request waiting for its reciprocal one, as stored in MongoDB."""

    requester_veraid_id: str
    target_veraid_id: str
    requester_endpoint_id: str
    requester_id_key_b64: str
    first_received: datetime
    # Which protocol the request came by ("legacy" or "veraid"): requests of one never
    # match the other's, so the kind is part of the stored key.
    kind: str = "legacy"
    signature_bundle_b64: str | None = None  # VeraId requests: forwarded on a match


@dataclass(frozen=True)
class PairingRequestsToDelete:
    """Both directions of one pair of VeraId ids, whichever of them is stored."""

    veraid_id_a: str
    veraid_id_b: str
    kind: str = "legacy"


@dataclass(frozen=True)
class PairingRequestReceived:
    """Signal: one side's pairing request, checked by the ingress before it was signalled.

    For VeraId requests the SignatureBundle was verified, the ids are in their matching
    form (see ``letro.veraid_ids.pairing_key``) and ``signature_bundle_b64`` holds the
    requester's SignatureBundle, forwarded on a match.
    """

    parcel_id: str
    server_endpoint_id: str
    requester_endpoint_id: str
    requester_veraid_id: str
    target_veraid_id: str
    requester_id_key_b64: str
    signature_bundle_b64: str = ""

    @property
    def dedup_key(self) -> str:
        # Parcel ids are chosen by the sending endpoint, so scope them to it.
        return f"{self.requester_endpoint_id}/{self.parcel_id}"


@dataclass(frozen=True)
class ContactPairingRefusalToSend:
    """A verified contact pairing request that earned a ``ContactPairingFailure``."""

    parcel_id: str
    sender_endpoint_id: str
    server_endpoint_id: str
    reason: str  # the ContactPairingFailureReason's name, for the Web UI and the logs
    failure_b64: str
