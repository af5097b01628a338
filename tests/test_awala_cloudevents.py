"""Unit tests of ``awala.cloudevents``: the binary-HTTP and Pub/Sub transports, sans I/O."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from dateutil.parser import isoparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from awala.cloudevents import (
    PubSubMessage,
    event_from_binary_http,
    event_from_http,
    event_from_pubsub_push,
    event_to_binary_http,
    event_to_pubsub_message,
)
from awala.errors import InvalidCloudEvent, InvalidServiceMessage
from awala.service_messages import (
    INCOMING_SERVICE_MESSAGE_TYPE,
    OUTGOING_SERVICE_MESSAGE_TYPE,
    IncomingServiceMessage,
    OutgoingServiceMessage,
    default_expiry,
    incoming_message_from_event,
    outgoing_message_to_event,
)
from tests.awala_samples import CONTENT_TYPE, CREATION, PARCEL_ID, RECIPIENT_ID, SENDER_ID

# Bodies that a decoder might turn into text or JSON values instead of passing them through.
BODIES = {
    "empty": b"",
    "non-UTF-8": b"\xff\xfe\x00\x80\xc3(",
    "JSON object": b'{"a": 1, "b": [true, null]}',
    "JSON string": b'"quoted"',
    "JSON null": b"null",
    "UTF-8 CSV": "alice@letro.app,bob@letro.app,Zoë ✓\n".encode(),
    "base64-looking": b"AAAA",
}

# An incoming service message as the Awala Internet Endpoint POSTs it.
INCOMING_HEADERS = {
    "content-type": CONTENT_TYPE,
    "ce-specversion": "1.0",
    "ce-id": PARCEL_ID,
    "ce-type": INCOMING_SERVICE_MESSAGE_TYPE,
    "ce-source": SENDER_ID,
    "ce-subject": RECIPIENT_ID,
    "ce-time": "2024-01-01T00:00:00.000Z",
    "ce-expiry": "2024-04-01T00:00:00.000Z",
}


def _incoming_headers(**changes: str | None) -> dict[str, str]:
    """INCOMING_HEADERS with some headers replaced (``ce_id="x"``) or removed (``None``)."""
    headers: dict[str, str | None] = {
        **INCOMING_HEADERS,
        **{name.replace("_", "-"): value for name, value in changes.items()},
    }
    return {name: value for name, value in headers.items() if value is not None}


def _expected_incoming(content: bytes) -> IncomingServiceMessage:
    return IncomingServiceMessage(
        parcel_id=PARCEL_ID,
        sender_id=SENDER_ID,
        recipient_id=RECIPIENT_ID,
        content_type=CONTENT_TYPE,
        content=content,
    )


# --- event_from_binary_http ------------------------------------------------------------


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_binary_http_incoming_message(body: bytes) -> None:
    event = event_from_binary_http(INCOMING_HEADERS, body)

    assert incoming_message_from_event(event) == _expected_incoming(body)
    assert type(event.get_data()) is bytes
    assert event.get_time() == datetime(2024, 1, 1, tzinfo=UTC)
    assert event.get_extension("expiry") == "2024-04-01T00:00:00.000Z"


def test_binary_http_header_names_are_case_insensitive() -> None:
    headers = {name.upper(): value for name, value in INCOMING_HEADERS.items()}
    headers["Content-Type"] = headers.pop("CONTENT-TYPE")

    event = event_from_binary_http(headers, b"\x00body")

    assert incoming_message_from_event(event) == _expected_incoming(b"\x00body")


def test_binary_http_body_with_trailing_bytes_is_kept_whole() -> None:
    body = b'{"complete": true}'
    event = event_from_binary_http(INCOMING_HEADERS, body + b"\x00trailing\xff")

    assert event.get_data() == body + b"\x00trailing\xff"


def test_binary_http_missing_specversion_defaults_to_1_0_like_the_js_sdk() -> None:
    event = event_from_binary_http(_incoming_headers(ce_specversion=None), b"x")

    assert event.get_specversion() == "1.0"
    assert incoming_message_from_event(event) == _expected_incoming(b"x")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": CONTENT_TYPE},
        {"x-ce-id": PARCEL_ID, "content-type": CONTENT_TYPE},
        {"ce_id": PARCEL_ID, "ce_type": INCOMING_SERVICE_MESSAGE_TYPE},
        {"id": PARCEL_ID, "type": INCOMING_SERVICE_MESSAGE_TYPE, "source": SENDER_ID},
    ],
    ids=["none", "content-type only", "prefix not at start", "underscore", "unprefixed"],
)
def test_binary_http_without_cloudevent_headers(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidCloudEvent, match="No CloudEvent headers"):
        event_from_binary_http(headers, b"body")


@pytest.mark.parametrize("specversion", ["2.0", "1", "1.0.0", "v1.0", " 1.0", "", "1.0%20"])
def test_binary_http_bad_specversion(specversion: str) -> None:
    with pytest.raises(InvalidCloudEvent):
        event_from_binary_http(_incoming_headers(ce_specversion=specversion), b"x")


@pytest.mark.parametrize(
    "changes",
    [
        {"ce_id": None},
        {"ce_id": ""},
        {"ce_source": None},
        {"ce_source": ""},
        {"ce_type": None},
        {"ce_type": ""},
        {"ce_id": None, "ce_source": None, "ce_type": None},
        {"ce_subject": ""},
        {"content_type": ""},
    ],
    ids=[
        "no id",
        "empty id",
        "no source",
        "empty source",
        "no type",
        "empty type",
        "only optional attributes",
        "empty subject",
        "empty content type",
    ],
)
def test_binary_http_missing_or_empty_attributes(changes: dict[str, str | None]) -> None:
    with pytest.raises(InvalidCloudEvent):
        event_from_binary_http(_incoming_headers(**changes), b"x")


def test_binary_http_without_id_is_refused_rather_than_given_a_random_one() -> None:
    # Regression: the SDK filled in a random UUID, so the parcel id was silently lost.
    with pytest.raises(InvalidCloudEvent, match=r"ce-id"):
        event_from_binary_http(_incoming_headers(ce_id=None), b"x")


@pytest.mark.parametrize(
    "time",
    [
        "yesterday",
        "",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01T25:00:00Z",
        "2024-01-01T00:00:00",
        "2024-01-01T00:00:00Zjunk",
        "2024-01-01T00:00:00.000Z ",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+25:00",
        "2024-01-01 00:00:00 UTC",
        "1704067200",
        "\uff12\uff10\uff12\uff14-01-01T00:00:00Z",  # full-width digits
        "%FF",
    ],
)
def test_binary_http_malformed_time(time: str) -> None:
    with pytest.raises(InvalidCloudEvent):
        event_from_binary_http(_incoming_headers(ce_time=time), b"x")


@pytest.mark.parametrize(
    "header",
    ["ce-", "ce-data", "ce-ex_piry", "ce-exp-iry", "ce-expiry.v2", "ce-ëxpiry", "ce-ex piry"],
)
def test_binary_http_invalid_extension_name(header: str) -> None:
    with pytest.raises(InvalidCloudEvent):
        event_from_binary_http({**INCOMING_HEADERS, header: "value"}, b"x")


def test_binary_http_header_values_are_percent_decoded() -> None:
    headers = _incoming_headers(
        ce_id="parcel%20%2F%201",
        ce_source="urn%3Aletro%3Asender%25",
        ce_subject="%E2%9C%93recipient",
        ce_time="2024-01-01T00%3A00%3A00.250Z",
        ce_expiry="2024-04-01T00%3A00%3A00.000Z",
    )

    event = event_from_binary_http(headers, b"x")

    assert incoming_message_from_event(event) == IncomingServiceMessage(
        parcel_id="parcel / 1",
        sender_id="urn:letro:sender%",
        recipient_id="✓recipient",
        content_type=CONTENT_TYPE,
        content=b"x",
    )
    assert event.get_time() == datetime(2024, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)
    assert event.get_extension("expiry") == "2024-04-01T00:00:00.000Z"


def test_binary_http_incoming_validation_after_parsing() -> None:
    event = event_from_binary_http(_incoming_headers(content_type=None), b"x")

    with pytest.raises(InvalidServiceMessage, match=r"^Missing event data content type$"):
        incoming_message_from_event(event)


# --- event_from_pubsub_push ------------------------------------------------------------

MESSAGE_ID = "11223344556677"
PUBLISH_TIME = "2024-01-02T03:04:05.678Z"
SUBSCRIPTION = "projects/letro/subscriptions/letro.incoming-messages"
PUBSUB_ATTRIBUTES = {
    "specversion": "1.0",
    "type": INCOMING_SERVICE_MESSAGE_TYPE,
    "source": SENDER_ID,
    "subject": RECIPIENT_ID,
    "datacontenttype": CONTENT_TYPE,
    "expiry": "2024-04-01T00:00:00.000Z",
}


def _push_envelope(
    attributes: Any = PUBSUB_ATTRIBUTES,
    data: bytes | None = b"content",
    *,
    message_id: Any = MESSAGE_ID,
    publish_time: Any = PUBLISH_TIME,
    **message_changes: Any,
) -> dict[str, Any]:
    """A push request body as Pub/Sub sends it, with both spellings of the id and time."""
    message: dict[str, Any] = {
        "attributes": attributes,
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": publish_time,
        "publish_time": publish_time,
    }
    if data is not None:
        message["data"] = base64.b64encode(data).decode("ascii")
    message.update(message_changes)
    return {"message": message, "subscription": SUBSCRIPTION}


def _push_body(*args: Any, **kwargs: Any) -> bytes:
    return json.dumps(_push_envelope(*args, **kwargs)).encode()


@pytest.mark.parametrize("content", list(BODIES.values()), ids=list(BODIES))
def test_pubsub_push_incoming_message(content: bytes) -> None:
    event = event_from_pubsub_push(_push_body(data=content))

    assert incoming_message_from_event(event) == IncomingServiceMessage(
        parcel_id=MESSAGE_ID,
        sender_id=SENDER_ID,
        recipient_id=RECIPIENT_ID,
        content_type=CONTENT_TYPE,
        content=content,
    )
    assert type(event.get_data()) is bytes
    assert event.get_extension("expiry") == "2024-04-01T00:00:00.000Z"


def test_pubsub_push_id_attribute_wins_over_message_id() -> None:
    event = event_from_pubsub_push(_push_body({**PUBSUB_ATTRIBUTES, "id": PARCEL_ID}))

    assert event.get_id() == PARCEL_ID


@pytest.mark.parametrize(
    "message_changes",
    [
        {},
        {"message_id": None},
        {"messageId": None, "message_id": "snake-only"},
    ],
    ids=["both spellings", "camelCase only", "snake_case only"],
)
def test_pubsub_push_id_defaults_to_message_id(message_changes: dict[str, Any]) -> None:
    envelope = _push_envelope()
    envelope["message"].update(message_changes)
    envelope["message"] = {k: v for k, v in envelope["message"].items() if v is not None}
    expected = envelope["message"].get("messageId", "snake-only")

    event = event_from_pubsub_push(json.dumps(envelope).encode())

    assert event.get_id() == expected


def test_pubsub_push_empty_id_attribute_falls_back_to_message_id() -> None:
    event = event_from_pubsub_push(_push_body({**PUBSUB_ATTRIBUTES, "id": ""}))

    assert event.get_id() == MESSAGE_ID


def test_pubsub_push_time_attribute_wins_over_publish_time() -> None:
    attributes = {**PUBSUB_ATTRIBUTES, "time": "2023-06-07T08:09:10.500+02:00"}

    event = event_from_pubsub_push(_push_body(attributes))

    assert event.get_time() == datetime(2023, 6, 7, 6, 9, 10, 500000, tzinfo=UTC)


def test_pubsub_push_time_defaults_to_publish_time() -> None:
    event = event_from_pubsub_push(_push_body())

    assert event.get_time() == isoparse(PUBLISH_TIME)
    assert event.get_time() == datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_pubsub_push_without_data_is_a_message_without_content() -> None:
    event = event_from_pubsub_push(_push_body(data=None))

    assert event.get_data() is None
    with pytest.raises(InvalidServiceMessage, match=r"^Missing event data$"):
        incoming_message_from_event(event)


def test_pubsub_push_with_trailing_whitespace_is_accepted() -> None:
    event = event_from_pubsub_push(_push_body() + b"\r\n \t")

    assert incoming_message_from_event(event).content == b"content"


def _deeply_nested(depth: int) -> bytes:
    return b'{"message": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[]",
        b"null",
        b'"message"',
        b"{}",
        b'{"message": null}',
        b'{"message": "text"}',
        b'{"message": []}',
        _push_body() + b"x",
        _push_body() + b"{}",
        _push_body()[:-1],
        b"[" * 100_000,
        _deeply_nested(100_000),
        _deeply_nested(100),
        json.dumps({"message": {**_push_envelope()["message"], "data": "x" * 100}}).encode()
        + b"\x00",
    ],
    ids=[
        "empty",
        "not JSON",
        "not UTF-8",
        "array",
        "null",
        "string",
        "no message",
        "null message",
        "string message",
        "array message",
        "trailing garbage",
        "trailing object",
        "truncated",
        "deeply nested array",
        "deeply nested message",
        "nested message",
        "trailing NUL",
    ],
)
def test_pubsub_push_malformed_envelope(body: bytes) -> None:
    with pytest.raises(InvalidCloudEvent):
        event_from_pubsub_push(body)


def test_pubsub_push_deep_nesting_is_an_invalid_event() -> None:
    # Regression: json.loads raised RecursionError, which escaped as a crash.
    with pytest.raises(InvalidCloudEvent, match="not JSON"):
        event_from_pubsub_push(b"[" * 100_000)


@pytest.mark.parametrize(
    "attributes",
    [
        {**PUBSUB_ATTRIBUTES, "subject": 1},
        {**PUBSUB_ATTRIBUTES, "expiry": None},
        {**PUBSUB_ATTRIBUTES, "source": ["a"]},
        {**PUBSUB_ATTRIBUTES, "flag": True},
        ["source", "type"],
        "source=x",
    ],
    ids=["int", "null", "list", "bool", "list attributes", "string attributes"],
)
def test_pubsub_push_attributes_must_be_strings(attributes: Any) -> None:
    with pytest.raises(InvalidCloudEvent, match="attributes must be strings"):
        event_from_pubsub_push(_push_body(attributes))


@pytest.mark.parametrize(
    "data",
    ["not base64!", "AAA", "AAAAA", "QUJD\n", "QUJD RA==", "ÀÀÀÀ", 123, ["QUJD"], {"b": "QUJD"}],
    ids=[
        "punctuation",
        "short padding",
        "odd length",
        "newline",
        "space",
        "non-ASCII",
        "number",
        "list",
        "object",
    ],
)
def test_pubsub_push_bad_data(data: Any) -> None:
    envelope = _push_envelope(data=None)
    envelope["message"]["data"] = data

    with pytest.raises(InvalidCloudEvent):
        event_from_pubsub_push(json.dumps(envelope).encode())


@pytest.mark.parametrize(
    "message_id",
    [None, "", 123, ["1"]],
    ids=["missing", "empty", "number", "list"],
)
def test_pubsub_push_needs_a_message_id(message_id: Any) -> None:
    envelope = _push_envelope({**PUBSUB_ATTRIBUTES, "id": PARCEL_ID})
    for key in ("messageId", "message_id"):
        if message_id is None:
            del envelope["message"][key]
        else:
            envelope["message"][key] = message_id

    with pytest.raises(InvalidCloudEvent, match="no messageId"):
        event_from_pubsub_push(json.dumps(envelope).encode())


@pytest.mark.parametrize(
    "changes",
    [
        {"attributes": {**PUBSUB_ATTRIBUTES, "time": "yesterday"}},
        {"attributes": {**PUBSUB_ATTRIBUTES, "time": "2024-01-01T00:00:00"}},
        {"publishTime": "yesterday", "publish_time": "yesterday"},
        {"publishTime": "2024-01-01T00:00:00Zjunk", "publish_time": None},
        {"attributes": {k: v for k, v in PUBSUB_ATTRIBUTES.items() if k != "source"}},
        {"attributes": {k: v for k, v in PUBSUB_ATTRIBUTES.items() if k != "type"}},
        {"attributes": {}},
        {"attributes": {**PUBSUB_ATTRIBUTES, "specversion": "0.3"}},
        {"attributes": {**PUBSUB_ATTRIBUTES, "specversion": "2.0"}},
        {"attributes": {**PUBSUB_ATTRIBUTES, "subject": ""}},
        {"attributes": {**PUBSUB_ATTRIBUTES, "Expiry": "x"}},
        {"attributes": {**PUBSUB_ATTRIBUTES, "data": "x"}},
        {"attributes": {**PUBSUB_ATTRIBUTES, "goog-header": "x"}},
    ],
    ids=[
        "bad time attribute",
        "naive time attribute",
        "bad publishTime",
        "publishTime with trailing garbage",
        "no source",
        "no type",
        "no attributes",
        "specversion 0.3",
        "specversion 2.0",
        "empty subject",
        "upper-case extension",
        "data extension",
        "dashed extension",
    ],
)
def test_pubsub_push_invalid_event(changes: dict[str, Any]) -> None:
    envelope = _push_envelope()
    envelope["message"].update(changes)
    envelope["message"] = {k: v for k, v in envelope["message"].items() if v is not None}

    with pytest.raises(InvalidCloudEvent):
        event_from_pubsub_push(json.dumps(envelope).encode())


# --- Outgoing: event_to_binary_http and event_to_pubsub_message ------------------------


def _outgoing(**overrides: Any) -> OutgoingServiceMessage:
    fields: dict[str, Any] = {
        "event_id": "d9d1b5a2-8c1e-4a47-9ad2-0a4f0b1c2d3e",
        "sender_id": RECIPIENT_ID,
        "recipient_id": SENDER_ID,
        "content_type": "application/vnd.relaycorp.letro.pairing-match-tmp",
        "content": b"\xffmatch\x00{}",
        "creation_time": CREATION,
        "expiry_time": default_expiry(CREATION),
    }
    fields.update(overrides)
    return OutgoingServiceMessage(**fields)


@pytest.mark.parametrize("content", list(BODIES.values()), ids=list(BODIES))
def test_binary_http_outgoing_message(content: bytes) -> None:
    message = _outgoing(content=content)

    headers, body = event_to_binary_http(outgoing_message_to_event(message))

    assert set(headers) == {
        "content-type",
        "ce-id",
        "ce-time",
        "ce-type",
        "ce-source",
        "ce-specversion",
        "ce-subject",
        "ce-expiry",
    }
    assert headers["content-type"] == message.content_type
    assert headers["ce-id"] == message.event_id
    assert headers["ce-type"] == OUTGOING_SERVICE_MESSAGE_TYPE
    assert headers["ce-source"] == message.sender_id
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-subject"] == message.recipient_id
    assert headers["ce-expiry"] == "2024-05-29T12:34:56.789Z"
    assert headers["ce-time"].endswith("Z")
    assert isoparse(headers["ce-time"]) == CREATION
    assert body == content
    assert type(body) is bytes


def test_binary_http_outgoing_time_in_another_zone_is_written_in_utc() -> None:
    creation = datetime(2024, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=3)))
    message = _outgoing(creation_time=creation, expiry_time=default_expiry(creation))

    headers, _ = event_to_binary_http(outgoing_message_to_event(message))

    assert headers["ce-time"] == "2024-02-29T22:00:00Z"
    assert headers["ce-expiry"] == "2024-05-31T22:00:00.000Z"


def test_binary_http_outgoing_values_are_percent_encoded() -> None:
    message = _outgoing(event_id="id with spaces", sender_id='"quoted"', recipient_id="50%✓")

    headers, _ = event_to_binary_http(outgoing_message_to_event(message))

    assert headers["ce-id"] == "id%20with%20spaces"
    assert headers["ce-source"] == "%22quoted%22"
    assert headers["ce-subject"] == "50%25%E2%9C%93"
    assert all(value.isascii() for value in headers.values())


@pytest.mark.parametrize("content", list(BODIES.values()), ids=list(BODIES))
def test_pubsub_outgoing_message(content: bytes) -> None:
    message = _outgoing(content=content)

    pubsub_message = event_to_pubsub_message(outgoing_message_to_event(message))

    assert pubsub_message == PubSubMessage(
        data=content,
        attributes={
            "specversion": "1.0",
            "id": message.event_id,
            "type": OUTGOING_SERVICE_MESSAGE_TYPE,
            "source": message.sender_id,
            "subject": message.recipient_id,
            "datacontenttype": message.content_type,
            "time": "2024-02-29T12:34:56.789123Z",
            "expiry": "2024-05-29T12:34:56.789Z",
        },
    )
    assert type(pubsub_message.data) is bytes
    assert all(type(value) is str for value in pubsub_message.attributes.values())


def test_pubsub_outgoing_time_in_another_zone_is_written_in_utc() -> None:
    creation = datetime(2024, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=3)))
    message = _outgoing(creation_time=creation, expiry_time=default_expiry(creation))

    pubsub_message = event_to_pubsub_message(outgoing_message_to_event(message))

    assert pubsub_message.attributes["time"] == "2024-02-29T22:00:00Z"


# --- Round trips -----------------------------------------------------------------------


def _as_incoming_headers(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "ce-type": INCOMING_SERVICE_MESSAGE_TYPE}


@pytest.mark.parametrize("content", list(BODIES.values()), ids=list(BODIES))
def test_binary_http_round_trip(content: bytes) -> None:
    message = _outgoing(content=content)
    headers, body = event_to_binary_http(outgoing_message_to_event(message))

    event = event_from_binary_http(_as_incoming_headers(headers), body)

    assert incoming_message_from_event(event) == IncomingServiceMessage(
        parcel_id=message.event_id,
        sender_id=message.sender_id,
        recipient_id=message.recipient_id,
        content_type=message.content_type,
        content=content,
    )
    assert event.get_time() == CREATION
    assert event.get_extension("expiry") == "2024-05-29T12:34:56.789Z"


@pytest.mark.parametrize("content", list(BODIES.values()), ids=list(BODIES))
def test_pubsub_round_trip(content: bytes) -> None:
    message = _outgoing(content=content)
    pubsub_message = event_to_pubsub_message(outgoing_message_to_event(message))
    attributes = {**pubsub_message.attributes, "type": INCOMING_SERVICE_MESSAGE_TYPE}
    # Pub/Sub assigns its own message id and publish time; the attributes take precedence.
    body = _push_body(
        attributes, pubsub_message.data, publish_time="2030-01-01T00:00:00Z", message_id="999"
    )

    event = event_from_pubsub_push(body)

    assert incoming_message_from_event(event) == IncomingServiceMessage(
        parcel_id=message.event_id,
        sender_id=message.sender_id,
        recipient_id=message.recipient_id,
        content_type=message.content_type,
        content=content,
    )
    assert event.get_time() == CREATION
    assert event.get_extension("expiry") == "2024-05-29T12:34:56.789Z"


_ATTRIBUTE_TEXT = st.text(min_size=1)
_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(9000, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
)


@settings(deadline=None)
@given(
    event_id=_ATTRIBUTE_TEXT,
    sender_id=_ATTRIBUTE_TEXT,
    recipient_id=_ATTRIBUTE_TEXT,
    content_type=_ATTRIBUTE_TEXT,
    content=st.binary(),
    creation_time=_TIMES,
)
def test_round_trips_preserve_arbitrary_values(
    event_id: str,
    sender_id: str,
    recipient_id: str,
    content_type: str,
    content: bytes,
    creation_time: datetime,
) -> None:
    message = OutgoingServiceMessage(
        event_id=event_id,
        sender_id=sender_id,
        recipient_id=recipient_id,
        content_type=content_type,
        content=content,
        creation_time=creation_time,
        expiry_time=creation_time + timedelta(days=1),
    )
    expected = IncomingServiceMessage(
        parcel_id=event_id,
        sender_id=sender_id,
        recipient_id=recipient_id,
        content_type=content_type,
        content=content,
    )
    event = outgoing_message_to_event(message)

    headers, body = event_to_binary_http(event)
    from_http = event_from_binary_http(_as_incoming_headers(headers), body)
    assert incoming_message_from_event(from_http) == expected
    assert from_http.get_time() == creation_time

    pubsub_message = event_to_pubsub_message(event)
    attributes = {**pubsub_message.attributes, "type": INCOMING_SERVICE_MESSAGE_TYPE}
    from_pubsub = event_from_pubsub_push(_push_body(attributes, pubsub_message.data))
    assert incoming_message_from_event(from_pubsub) == expected
    assert from_pubsub.get_time() == creation_time


# --- Robustness: only AwalaError subclasses escape -------------------------------------

_KNOWN_HEADER_NAMES = [
    *INCOMING_HEADERS,
    "Content-Type",
    "CE-ID",
    "Ce-Time",
    "ce-data",
    "ce-",
    "ce-datacontenttype",
    "ce-dataschema",
    "ce-data_base64",
    "ce-schemaurl",
    "ce-datacontentencoding",
]
_HEADER_NAMES = st.one_of(
    st.sampled_from(_KNOWN_HEADER_NAMES),
    st.text(max_size=12).map(lambda suffix: "ce-" + suffix),
    st.text(max_size=12),
)
_HEADER_VALUES = st.one_of(
    st.text(),
    st.sampled_from(
        [
            "",
            "1.0",
            "0.3",
            INCOMING_SERVICE_MESSAGE_TYPE,
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+99:00",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-23:59",
            "%",
            "%zz",
            "%E2%9C",
            "%00",
        ]
    ),
)


def _mutated_headers(changes: dict[str, str], dropped: set[str]) -> dict[str, str]:
    return {k: v for k, v in INCOMING_HEADERS.items() if k not in dropped} | changes


_HEADER_DICTS = st.one_of(
    st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=10),
    st.builds(
        _mutated_headers,
        st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=4),
        st.sets(st.sampled_from(list(INCOMING_HEADERS))),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=_HEADER_DICTS, body=st.binary())
def test_binary_http_raises_only_awala_errors(headers: dict[str, str], body: bytes) -> None:
    try:
        event = event_from_binary_http(headers, body)
    except InvalidCloudEvent:
        return
    try:
        message = incoming_message_from_event(event)
    except InvalidServiceMessage:
        return
    assert message.content == body


@settings(max_examples=400, deadline=None)
@given(body=st.binary())
def test_pubsub_push_arbitrary_bytes_raise_only_invalid_cloud_event(body: bytes) -> None:
    try:
        event_from_pubsub_push(body)
    except InvalidCloudEvent:
        return
    pytest.fail(f"Arbitrary bytes were accepted: {body!r}")


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_TIMESTAMP_TEXT = st.sampled_from(
    [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.123456789Z",
        "2024-01-01T00:00:00+99:00",
        "2024-01-01T00:00:00",
        "0001-01-01T00:00:00+01:00",
        "yesterday",
        "",
    ]
)
_PUBSUB_ATTRIBUTE_NAMES = st.sampled_from(
    [*PUBSUB_ATTRIBUTES, "id", "time", "dataschema", "data", "Expiry", "x-y", ""]
) | st.text(max_size=8)
_PUBSUB_ATTRIBUTE_VALUES = st.one_of(
    st.text(), _TIMESTAMP_TEXT, st.sampled_from(["1.0", "0.3"]), _JSON_VALUES
)


def _mutated_attributes(changes: dict[str, Any], dropped: set[str]) -> dict[str, Any]:
    return {k: v for k, v in PUBSUB_ATTRIBUTES.items() if k not in dropped} | changes


_PUBSUB_ATTRIBUTE_DICTS = st.one_of(
    st.builds(
        _mutated_attributes,
        st.dictionaries(_PUBSUB_ATTRIBUTE_NAMES, _PUBSUB_ATTRIBUTE_VALUES, max_size=4),
        st.sets(st.sampled_from(list(PUBSUB_ATTRIBUTES))),
    ),
    st.dictionaries(_PUBSUB_ATTRIBUTE_NAMES, _PUBSUB_ATTRIBUTE_VALUES, max_size=8),
    _JSON_VALUES,
)
_PUBSUB_MESSAGES = st.fixed_dictionaries(
    {},
    optional={
        "attributes": _PUBSUB_ATTRIBUTE_DICTS,
        "data": st.one_of(
            st.binary().map(lambda data: base64.b64encode(data).decode("ascii")),
            st.text(),
            _JSON_VALUES,
        ),
        "messageId": st.one_of(st.text(), _JSON_VALUES),
        "message_id": st.one_of(st.text(), _JSON_VALUES),
        "publishTime": st.one_of(_TIMESTAMP_TEXT, _JSON_VALUES),
        "publish_time": st.one_of(_TIMESTAMP_TEXT, _JSON_VALUES),
    },
)
_PUBSUB_MESSAGE_KEYS = [
    "attributes",
    "data",
    "messageId",
    "message_id",
    "publishTime",
    "publish_time",
]


def _mutated_message(
    attributes: dict[str, Any], data: bytes, changes: dict[str, Any], dropped: set[str]
) -> dict[str, Any]:
    message = {
        "attributes": attributes,
        "data": base64.b64encode(data).decode("ascii"),
        "messageId": MESSAGE_ID,
        "message_id": MESSAGE_ID,
        "publishTime": PUBLISH_TIME,
        "publish_time": PUBLISH_TIME,
    }
    return {k: v for k, v in message.items() if k not in dropped} | changes


# Mostly valid messages with a few fields changed, dropped or of another type.
_NEAR_VALID_PUBSUB_MESSAGES = st.builds(
    _mutated_message,
    st.builds(
        _mutated_attributes,
        st.dictionaries(_PUBSUB_ATTRIBUTE_NAMES, _PUBSUB_ATTRIBUTE_VALUES, max_size=2),
        st.sets(st.sampled_from(list(PUBSUB_ATTRIBUTES)), max_size=2),
    ),
    st.binary(),
    st.dictionaries(
        st.sampled_from(_PUBSUB_MESSAGE_KEYS),
        st.one_of(st.text(), _TIMESTAMP_TEXT, _JSON_VALUES),
        max_size=2,
    ),
    st.sets(st.sampled_from(_PUBSUB_MESSAGE_KEYS), max_size=2),
)
_PUSH_ENVELOPES = st.one_of(
    st.fixed_dictionaries(
        {"message": _NEAR_VALID_PUBSUB_MESSAGES},
        optional={"subscription": st.one_of(st.text(), _JSON_VALUES)},
    ),
    st.fixed_dictionaries(
        {"message": _PUBSUB_MESSAGES}, optional={"subscription": st.one_of(st.text(), _JSON_VALUES)}
    ),
    st.fixed_dictionaries({"message": _JSON_VALUES}),
    _JSON_VALUES,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelope=_PUSH_ENVELOPES, trailer=st.sampled_from([b"", b" \n", b"x", b"\x00", b"{}"]))
def test_pubsub_push_json_raises_only_awala_errors(envelope: Any, trailer: bytes) -> None:
    body = json.dumps(envelope).encode() + trailer
    try:
        event = event_from_pubsub_push(body)
    except InvalidCloudEvent:
        return
    assert trailer.strip() == b""
    message_fields = envelope["message"]
    attributes = message_fields.get("attributes") or {}
    expected_id = (
        attributes.get("id") or message_fields.get("messageId") or message_fields.get("message_id")
    )
    assert event.get_id() == expected_id
    try:
        message = incoming_message_from_event(event)
    except InvalidServiceMessage:
        return
    assert message.content == base64.b64decode(message_fields["data"])


# --- event_from_http: structured content mode ---------------------------------------------

STRUCTURED_HEADERS = {"Content-Type": "application/cloudevents+json; charset=UTF-8"}


def _structured(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": PARCEL_ID,
        "type": INCOMING_SERVICE_MESSAGE_TYPE,
        "source": SENDER_ID,
        "subject": RECIPIENT_ID,
        "datacontenttype": CONTENT_TYPE,
        "time": "2024-01-01T00:00:00.000Z",
        "expiry": "2024-04-01T00:00:00.000Z",
    }
    document.update(changes)
    return {name: value for name, value in document.items() if value is not None}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_structured_http_incoming_message(body: bytes) -> None:
    document = _structured(data_base64=base64.b64encode(body).decode())

    event = event_from_http(STRUCTURED_HEADERS, json.dumps(document).encode())

    assert incoming_message_from_event(event) == _expected_incoming(body)
    assert event.get_time() == isoparse("2024-01-01T00:00:00.000Z")
    assert event.get_extension("expiry") == "2024-04-01T00:00:00.000Z"


def test_structured_http_text_data_is_its_utf8_bytes() -> None:
    document = _structured(data="alice@letro.app,zoë@letro.app,a2V5")

    event = event_from_http(STRUCTURED_HEADERS, json.dumps(document).encode())

    assert (
        incoming_message_from_event(event).content == "alice@letro.app,zoë@letro.app,a2V5".encode()
    )


def test_binary_mode_is_read_when_the_content_type_is_not_structured() -> None:
    event = event_from_http(INCOMING_HEADERS, b"raw")
    assert incoming_message_from_event(event) == _expected_incoming(b"raw")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (_structured(id=None), "No CloudEvent id"),
        (_structured(id=""), "No CloudEvent id"),
        (_structured(specversion="0.3"), "spec version"),
        (_structured(data={"json": "object"}), "data_base64 or a string"),
        (_structured(data=[1, 2]), "data_base64 or a string"),
        (_structured(data_base64="not base64!"), "not base64"),
        (_structured(data_base64=17), "must be a string"),
        (_structured(time="yesterday"), "Malformed CloudEvent"),
        (_structured(source=None), "Malformed CloudEvent"),
        ([_structured()], "not a JSON object"),
    ],
)
def test_structured_http_invalid(document: Any, reason: str) -> None:
    with pytest.raises(InvalidCloudEvent, match=reason):
        event_from_http(STRUCTURED_HEADERS, json.dumps(document).encode())


def test_batched_events_are_refused() -> None:
    headers = {"content-type": "application/cloudevents-batch+json"}
    with pytest.raises(InvalidCloudEvent, match="Batched"):
        event_from_http(headers, json.dumps([_structured()]).encode())


_STRUCTURED_DOCUMENTS = st.one_of(
    st.builds(
        lambda changes: _structured(**changes),
        st.dictionaries(
            st.sampled_from(
                ["id", "specversion", "type", "source", "subject", "time", "data", "data_base64"]
            ),
            st.one_of(_JSON_VALUES, _TIMESTAMP_TEXT, st.text(max_size=20)),
            max_size=3,
        ),
    ),
    _JSON_VALUES,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_STRUCTURED_DOCUMENTS, trailer=st.sampled_from([b"", b" ", b"x", b"\x00"]))
def test_structured_http_raises_only_awala_errors(document: Any, trailer: bytes) -> None:
    body = json.dumps(document).encode() + trailer
    try:
        event = event_from_http(STRUCTURED_HEADERS, body)
    except InvalidCloudEvent:
        return
    assert trailer.strip() == b""
    assert event.get_id() == document["id"]
    with contextlib.suppress(InvalidServiceMessage):
        incoming_message_from_event(event)


@pytest.mark.parametrize("attribute", ["id", "source", "subject"])
def test_ids_that_are_not_unicode_are_refused(attribute: str) -> None:
    # JSON can escape a lone surrogate; no UTF-8 text holds one, so no workflow id could.
    body = json.dumps(_structured(**{attribute: "\ud800x"}, data="a,b,c")).encode()

    event = event_from_http(STRUCTURED_HEADERS, body)

    with pytest.raises(InvalidServiceMessage, match="not valid Unicode"):
        incoming_message_from_event(event)
