"""Outgoing service messages: what every workflow hands the egress, and forwarding input."""

import base64
from dataclasses import dataclass
from datetime import datetime


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
class Forwarding:
    """The ``ForwardServiceMessage`` workflow's input: a checked message and its recipient."""

    server_endpoint_id: str
    recipient_endpoint_id: str
    content_type: str
    content_b64: str
