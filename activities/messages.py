"""The activity inputs shared by workflows and activities: small, serialisable dataclasses.

Binary content travels base64-encoded: Temporal's JSON converter would otherwise write
``bytes`` as an array of numbers, several times larger in every workflow history.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class PairingRequestsToDelete:
    """Both directions of one pair of VeraId ids, whichever of them is stored."""

    veraid_id_a: str
    veraid_id_b: str
