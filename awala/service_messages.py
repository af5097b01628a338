"""Incoming and outgoing Awala service messages and their CloudEvent mapping.

The attribute mapping follows the Awala Internet Endpoint: ``source`` is the sender's
endpoint id, ``subject`` the recipient's, ``datacontenttype`` the service message type
and ``data`` the raw service message content.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.v1.event import CloudEvent

from awala.errors import InvalidServiceMessage

INCOMING_SERVICE_MESSAGE_TYPE = "tech.relaycorp.awala.endpoint-internet.incoming-service-message"
OUTGOING_SERVICE_MESSAGE_TYPE = "tech.relaycorp.awala.endpoint-internet.outgoing-service-message"

# How long the endpoint should keep trying to deliver our replies, as the original server did.
OUTGOING_MESSAGE_TTL_MONTHS = 3
# Parcel ids are at most 64 characters in RAMF (relaynet-core's MAX_ID_LENGTH). Endpoint ids
# are "0" and a hex SHA-256 digest, 65 characters; twice that leaves room for any future
# form while keeping every workflow id built from them under Temporal's 1,000-byte limit.
MAX_PARCEL_ID_LENGTH = 64
MAX_ENDPOINT_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class IncomingServiceMessage:
    """A service message that an Awala endpoint sent to us."""

    parcel_id: str
    sender_id: str
    recipient_id: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class OutgoingServiceMessage:
    """A service message for us to send to an Awala endpoint."""

    event_id: str
    sender_id: str
    recipient_id: str
    content_type: str
    content: bytes
    creation_time: datetime
    expiry_time: datetime

    def __post_init__(self) -> None:
        if self.creation_time.tzinfo is None or self.expiry_time.tzinfo is None:
            raise ValueError("Outgoing message times must be timezone-aware")
        if self.expiry_time < self.creation_time:
            raise ValueError("Outgoing message cannot expire before it is created")


def incoming_message_from_event(event: BaseCloudEvent) -> IncomingServiceMessage:
    """Check that ``event`` is an incoming service message and extract it.

    The checks, and the first one to fail, are those of the Awala Internet Endpoint's
    reference backend, so the same event is refused for the same reason.
    """
    attributes = event.get_attributes()
    if attributes.get("type") != INCOMING_SERVICE_MESSAGE_TYPE:
        raise InvalidServiceMessage("Invalid event type")
    subject = attributes.get("subject")
    if not subject:
        raise InvalidServiceMessage("Missing event subject")
    content_type = attributes.get("datacontenttype")
    if not content_type:
        raise InvalidServiceMessage("Missing event data content type")
    content = _data_as_bytes(event.get_data())
    if content is None:
        raise InvalidServiceMessage("Missing event data")
    parcel_id, sender_id = str(attributes["id"]), str(attributes["source"])
    # Ours, not the reference backend's: these ids end up in workflow ids, which Temporal
    # bounds. An id over the limit is refused for good rather than retried by the broker.
    for name, value, limit in (
        ("id", parcel_id, MAX_PARCEL_ID_LENGTH),
        ("source", sender_id, MAX_ENDPOINT_ID_LENGTH),
        ("subject", str(subject), MAX_ENDPOINT_ID_LENGTH),
    ):
        _check_id(name, value, limit)
    return IncomingServiceMessage(
        parcel_id=parcel_id,
        sender_id=sender_id,
        recipient_id=str(subject),
        content_type=str(content_type),
        content=content,
    )


def _check_id(name: str, value: str, limit: int) -> None:
    try:
        length = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate, from a JSON escape: Temporal would refuse it
        raise InvalidServiceMessage(f"Event {name} is not valid Unicode") from None
    if length > limit:
        raise InvalidServiceMessage(f"Event {name} is longer than {limit} bytes")


def outgoing_message_to_event(message: OutgoingServiceMessage) -> CloudEvent:
    """Build the outgoing service message CloudEvent for ``message``."""
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": message.event_id,
        "type": OUTGOING_SERVICE_MESSAGE_TYPE,
        "source": message.sender_id,
        "subject": message.recipient_id,
        "datacontenttype": message.content_type,
        # In UTC, so both transports write it with a Z suffix like JavaScript's toISOString().
        "time": message.creation_time.astimezone(UTC),
        "expiry": _iso_timestamp(message.expiry_time),
    }
    return CloudEvent(attributes, message.content)


def add_months(moment: datetime, months: int) -> datetime:
    """Add calendar months, clamping the day to a shorter month's last (31 Jan + 1 = 28 Feb)."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def default_expiry(creation_time: datetime) -> datetime:
    return add_months(creation_time, OUTGOING_MESSAGE_TTL_MONTHS)


def _data_as_bytes(data: object) -> bytes | None:
    if data is None:
        return None
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    raise InvalidServiceMessage("Event data must be bytes")


def _iso_timestamp(moment: datetime) -> str:
    # Millisecond precision with a Z suffix, the form JavaScript's toISOString() produces
    # and the endpoint parses.
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"
