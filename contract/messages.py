"""Outgoing service messages: what every workflow hands the egress, the egress's retry
window, a message kept undelivered, forwarding input, and what a one-shot workflow
remembers of its parcel; and the digest by which the ingress and the pairs remember a parcel."""

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

# 128 bits of SHA-256: no two parcels are mistaken for each other, and the digest says
# nothing of whose parcel it was.
_DIGEST_HEX_DIGITS = 32


def dedup_key(sender_id: str, parcel_id: str) -> str:
    # Parcel ids are chosen by the sending endpoint, so they are scoped to it.
    return f"{sender_id}/{parcel_id}"


def parcel_digest(key: str) -> str:
    """What is remembered of a parcel, from its ``dedup_key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:_DIGEST_HEX_DIGITS]


@dataclass(frozen=True)
class OutgoingMessage:
    """One Awala service message to send, with the id it keeps across retries.

    The ``emit_service_message`` activity's input.
    """

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
class DeliveryWindow:
    """How long delivery is retried once the quick first attempts failed: the worker's
    ``EGRESS_RETRY_SECONDS``, the ``egress_retry_window`` local activity's result."""

    seconds: float


@dataclass(frozen=True)
class UndeliveredMessage:
    """A message whose delivery retries ran out, to keep for an operator.

    The ``keep_undelivered_message`` activity's input.
    """

    message: OutgoingMessage
    workflow_id: str
    reason: str  # the last failure, as the egress reported it
    first_failure: datetime
    last_failure: datetime
    # The VeraId ids the message is about (the pair, the new account), so that purging
    # one id's data finds it.
    veraid_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Forwarding:
    """The ``ForwardServiceMessage`` workflow's input: a checked message and its recipient."""

    server_endpoint_id: str
    recipient_endpoint_id: str
    content_type: str
    content_b64: str
