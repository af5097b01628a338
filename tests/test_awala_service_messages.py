"""Unit tests of ``awala.service_messages``: the service message <-> CloudEvent mapping."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given
from hypothesis import strategies as st

from awala.errors import AwalaError, InvalidServiceMessage
from awala.service_messages import (
    INCOMING_SERVICE_MESSAGE_TYPE,
    OUTGOING_SERVICE_MESSAGE_TYPE,
    IncomingServiceMessage,
    OutgoingServiceMessage,
    add_months,
    default_expiry,
    incoming_message_from_event,
    outgoing_message_to_event,
)
from tests.awala_samples import CONTENT_TYPE, CREATION, PARCEL_ID, RECIPIENT_ID, SENDER_ID

# Content that a lenient decoder would turn into text or JSON values instead of bytes.
CONTENTS = {
    "empty": b"",
    "non-UTF-8": b"\xff\xfe\x00\x80\xc3(",
    "JSON object": b'{"a": 1, "b": [true, null]}',
    "JSON string": b'"quoted"',
    "JSON null": b"null",
    "JSON number": b"42",
    "UTF-8 CSV": "alice@letro.app,bob@letro.app,Zoë ✓\n".encode(),
    "base64-looking": b"AAAA",
}


def _incoming_event(
    data: Any = b"content", *, drop: tuple[str, ...] = (), **overrides: Any
) -> CloudEvent:
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": PARCEL_ID,
        "type": INCOMING_SERVICE_MESSAGE_TYPE,
        "source": SENDER_ID,
        "subject": RECIPIENT_ID,
        "datacontenttype": CONTENT_TYPE,
        "time": datetime(2024, 1, 1, tzinfo=UTC),
        "expiry": "2024-04-01T00:00:00.000Z",
    }
    attributes.update(overrides)
    for name in drop:
        del attributes[name]
    return CloudEvent(attributes, data)


# --- incoming_message_from_event: validation -------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "drop", "data", "expected_error"),
    [
        # Each row breaks the checked property and every later one, so the first check wins.
        (
            OUTGOING_SERVICE_MESSAGE_TYPE,
            ("subject", "datacontenttype"),
            None,
            "Invalid event type",
        ),
        ("com.example.other", (), b"content", "Invalid event type"),
        (INCOMING_SERVICE_MESSAGE_TYPE.upper(), (), b"content", "Invalid event type"),
        (INCOMING_SERVICE_MESSAGE_TYPE + " ", (), b"content", "Invalid event type"),
        (
            INCOMING_SERVICE_MESSAGE_TYPE,
            ("subject", "datacontenttype"),
            None,
            "Missing event subject",
        ),
        (INCOMING_SERVICE_MESSAGE_TYPE, ("subject",), b"content", "Missing event subject"),
        (
            INCOMING_SERVICE_MESSAGE_TYPE,
            ("datacontenttype",),
            None,
            "Missing event data content type",
        ),
        (
            INCOMING_SERVICE_MESSAGE_TYPE,
            ("datacontenttype",),
            b"content",
            "Missing event data content type",
        ),
        (INCOMING_SERVICE_MESSAGE_TYPE, (), None, "Missing event data"),
    ],
)
def test_incoming_validation_order_and_messages(
    event_type: str, drop: tuple[str, ...], data: bytes | None, expected_error: str
) -> None:
    event = _incoming_event(data, drop=drop, type=event_type)

    with pytest.raises(InvalidServiceMessage) as error:
        incoming_message_from_event(event)

    assert str(error.value) == expected_error
    assert isinstance(error.value, AwalaError)


@pytest.mark.parametrize(
    "data",
    [{"a": 1}, 42, ["x"]],
    ids=["dict", "int", "list"],
)
def test_incoming_data_that_is_not_bytes_is_refused(data: Any) -> None:
    with pytest.raises(InvalidServiceMessage, match=r"^Event data must be bytes$"):
        incoming_message_from_event(_incoming_event(data))


def test_incoming_text_data_is_encoded_as_utf8() -> None:
    message = incoming_message_from_event(_incoming_event("Zoë ✓"))

    assert message.content == "Zoë ✓".encode()


# --- incoming_message_from_event: mapping ----------------------------------------------


@pytest.mark.parametrize("content", list(CONTENTS.values()), ids=list(CONTENTS))
def test_incoming_mapping(content: bytes) -> None:
    message = incoming_message_from_event(_incoming_event(content))

    assert message == IncomingServiceMessage(
        parcel_id=PARCEL_ID,
        sender_id=SENDER_ID,
        recipient_id=RECIPIENT_ID,
        content_type=CONTENT_TYPE,
        content=content,
    )
    assert type(message.content) is bytes


def test_incoming_mapping_uses_each_attribute() -> None:
    # Distinct values everywhere, so swapping two fields in the mapping is caught.
    event = _incoming_event(
        b"\x00\x01", id="parcel", source="sender", subject="recipient", datacontenttype="c/t"
    )

    message = incoming_message_from_event(event)

    assert (message.parcel_id, message.sender_id, message.recipient_id) == (
        "parcel",
        "sender",
        "recipient",
    )
    assert (message.content_type, message.content) == ("c/t", b"\x00\x01")


def test_incoming_time_and_expiry_are_ignored() -> None:
    with_them = incoming_message_from_event(_incoming_event(b"x"))
    without_them = incoming_message_from_event(
        _incoming_event(b"x", time=datetime(1999, 1, 1, tzinfo=UTC), drop=("expiry",))
    )

    assert with_them == without_them


# --- OutgoingServiceMessage ------------------------------------------------------------


def _outgoing(**overrides: Any) -> OutgoingServiceMessage:
    fields: dict[str, Any] = {
        "event_id": "d9d1b5a2-8c1e-4a47-9ad2-0a4f0b1c2d3e",
        "sender_id": RECIPIENT_ID,
        "recipient_id": SENDER_ID,
        "content_type": "application/vnd.relaycorp.letro.pairing-match-tmp",
        "content": b"\xffmatch\x00",
        "creation_time": CREATION,
        "expiry_time": default_expiry(CREATION),
    }
    fields.update(overrides)
    return OutgoingServiceMessage(**fields)


@pytest.mark.parametrize(
    ("creation_time", "expiry_time"),
    [
        (datetime(2024, 1, 1), datetime(2024, 4, 1, tzinfo=UTC)),
        (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 4, 1)),
        (datetime(2024, 1, 1), datetime(2024, 4, 1)),
    ],
    ids=["naive creation", "naive expiry", "both naive"],
)
def test_outgoing_rejects_naive_datetimes(creation_time: datetime, expiry_time: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _outgoing(creation_time=creation_time, expiry_time=expiry_time)


@pytest.mark.parametrize(
    "expiry_time",
    [
        CREATION - timedelta(microseconds=1),
        CREATION - timedelta(days=1),
        # Later on the wall clock but earlier in absolute time.
        CREATION.replace(hour=13, tzinfo=timezone(timedelta(hours=2))),
    ],
    ids=["1 µs before", "1 day before", "earlier instant in another zone"],
)
def test_outgoing_rejects_expiry_before_creation(expiry_time: datetime) -> None:
    with pytest.raises(ValueError, match="cannot expire before it is created"):
        _outgoing(expiry_time=expiry_time)


def test_outgoing_accepts_expiry_equal_to_creation() -> None:
    message = _outgoing(expiry_time=CREATION)

    assert message.expiry_time == message.creation_time


# --- outgoing_message_to_event ---------------------------------------------------------


def test_outgoing_event_attributes_and_data() -> None:
    message = _outgoing()

    event = outgoing_message_to_event(message)

    assert event.get_attributes() == {
        "specversion": "1.0",
        "id": message.event_id,
        "type": OUTGOING_SERVICE_MESSAGE_TYPE,
        "source": message.sender_id,
        "subject": message.recipient_id,
        "datacontenttype": message.content_type,
        "time": CREATION,
        "expiry": "2024-05-29T12:34:56.789Z",
    }
    assert event.get_data() == message.content
    assert type(event.get_data()) is bytes


@pytest.mark.parametrize(
    ("expiry_time", "expected"),
    [
        (datetime(2024, 6, 1, tzinfo=UTC), "2024-06-01T00:00:00.000Z"),
        (datetime(2024, 6, 1, 0, 0, 0, 999999, tzinfo=UTC), "2024-06-01T00:00:00.999Z"),
        (
            datetime(2024, 6, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-31T23:30:00.000Z",
        ),
        (
            datetime(2024, 12, 31, 22, 0, 0, 5000, tzinfo=timezone(timedelta(hours=-3))),
            "2025-01-01T01:00:00.005Z",
        ),
    ],
    ids=["midnight UTC", "truncated to ms", "east of UTC", "west of UTC, year roll"],
)
def test_outgoing_expiry_is_a_javascript_iso_string(expiry_time: datetime, expected: str) -> None:
    event = outgoing_message_to_event(_outgoing(expiry_time=expiry_time))

    assert event.get_extension("expiry") == expected


def test_outgoing_time_is_in_utc() -> None:
    # Regression: a creation time in another zone used to keep its offset, so the
    # transports wrote it without the Z suffix that JavaScript's toISOString() gives.
    creation = datetime(2024, 1, 31, 23, 0, 0, 500000, tzinfo=timezone(timedelta(hours=-5)))

    event = outgoing_message_to_event(
        _outgoing(creation_time=creation, expiry_time=default_expiry(creation))
    )

    time = event.get_time()
    assert time == creation
    assert time is not None
    assert time.utcoffset() == timedelta(0)


def test_outgoing_event_ids_are_the_message_ids() -> None:
    first = outgoing_message_to_event(_outgoing(event_id="one"))
    second = outgoing_message_to_event(_outgoing(event_id="two"))

    assert (first.get_id(), second.get_id()) == ("one", "two")


# --- add_months and default_expiry -----------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2023, 1, 31), 1, datetime(2023, 2, 28)),
        (datetime(2024, 1, 31), 1, datetime(2024, 2, 29)),
        (datetime(2024, 2, 29), 12, datetime(2025, 2, 28)),
        (datetime(2024, 2, 29), 48, datetime(2028, 2, 29)),
        (datetime(2023, 12, 15), 1, datetime(2024, 1, 15)),
        (datetime(2023, 12, 31), 2, datetime(2024, 2, 29)),
        (datetime(2024, 11, 30), 3, datetime(2025, 2, 28)),
        (datetime(2023, 11, 30), 3, datetime(2024, 2, 29)),
        (datetime(2024, 5, 31), 1, datetime(2024, 6, 30)),
        (datetime(2024, 10, 31), 3, datetime(2025, 1, 31)),
        (datetime(2024, 7, 15), 0, datetime(2024, 7, 15)),
        (datetime(2024, 1, 15), -1, datetime(2023, 12, 15)),
        (datetime(2024, 3, 31), -1, datetime(2024, 2, 29)),
        (datetime(2024, 1, 1), 25, datetime(2026, 2, 1)),
    ],
)
def test_add_months(start: datetime, months: int, expected: datetime) -> None:
    assert add_months(start, months) == expected


def test_add_months_keeps_time_of_day_and_zone() -> None:
    zone = timezone(timedelta(hours=5, minutes=30))
    start = datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=zone)

    result = add_months(start, 1)

    assert result == datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=zone)
    assert result.tzinfo is zone


@pytest.mark.parametrize(
    ("creation", "expected"),
    [
        (datetime(2024, 1, 15, 8, 0, tzinfo=UTC), datetime(2024, 4, 15, 8, 0, tzinfo=UTC)),
        (datetime(2023, 11, 30, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2024, 11, 30, tzinfo=UTC), datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2024, 5, 31, tzinfo=UTC), datetime(2024, 8, 31, tzinfo=UTC)),
        (datetime(2024, 12, 31, tzinfo=UTC), datetime(2025, 3, 31, tzinfo=UTC)),
    ],
)
def test_default_expiry_is_three_months_later(creation: datetime, expected: datetime) -> None:
    assert default_expiry(creation) == expected


@given(
    start=st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2500, 12, 31), timezones=st.just(UTC)
    ),
    months=st.integers(min_value=-240, max_value=240),
)
def test_add_months_properties(start: datetime, months: int) -> None:
    result = add_months(start, months)

    assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == months
    last_day = calendar.monthrange(result.year, result.month)[1]
    assert result.day == min(start.day, last_day)
    assert result.timetz() == start.timetz()
