"""The two CloudEvents transports of the Awala Internet Endpoint, as pure conversions.

* ``ce-http-binary``: CloudEvents over HTTP. We send in binary content mode (attributes in
  ``ce-*`` headers, the body is the raw service message) and read both that and the
  structured mode some brokers deliver (``application/cloudevents+json``, the service
  message in ``data_base64``).
* ``google-pubsub``: a Pub/Sub message whose attributes are the CloudEvent's attributes
  and whose data is the raw service message. Incoming ones reach us as push-subscription
  envelopes (JSON).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import http
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.v1.event import CloudEvent
from dateutil.parser import isoparse

from awala.errors import InvalidCloudEvent

_CE_HEADER_PREFIX = "ce-"
_CE_ID_HEADER = "ce-id"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
_BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"


class _RawDataFormat:
    """A CloudEvents event format that keeps ``data`` as the exact bytes of the body.

    The SDK's JSON format would decode UTF-8 bodies to text and JSON bodies to dicts;
    Awala service messages are opaque bytes and must reach their handlers unchanged.
    Only the binary-mode methods are used.
    """

    def read(self, event_klass: Any, data: str | bytes) -> BaseCloudEvent:
        raise NotImplementedError("structured mode is not used")

    def write(self, event: BaseCloudEvent) -> bytes:
        raise NotImplementedError("structured mode is not used")

    def write_data(
        self, data: dict[str, Any] | str | bytes | None, datacontenttype: str | None
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            return data.encode("utf-8")
        if data is None:
            return b""
        raise TypeError("Service message data must be bytes")

    def read_data(self, body: bytes, datacontenttype: str | None) -> bytes:
        return body

    def get_content_type(self) -> str:
        return "application/octet-stream"


_RAW_FORMAT = _RawDataFormat()

# What the SDK raises for attributes it cannot accept, besides its own exception type.
_SDK_PARSE_ERRORS = (BaseCloudEventException, ValueError, TypeError, KeyError, OverflowError)


def event_from_http(headers: Mapping[str, str], body: bytes) -> BaseCloudEvent:
    """Read a CloudEvent sent over HTTP in binary or structured content mode."""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == STRUCTURED_CONTENT_TYPE:
        return event_from_structured_http(body)
    if media_type == _BATCH_CONTENT_TYPE:
        raise InvalidCloudEvent("Batched CloudEvents are not supported")
    return event_from_binary_http(headers, body)


def event_from_structured_http(body: bytes) -> BaseCloudEvent:
    """Read a CloudEvent in the structured content mode's JSON format."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise InvalidCloudEvent("Structured CloudEvent is not JSON") from error
    if not isinstance(document, dict):
        raise InvalidCloudEvent("Structured CloudEvent is not a JSON object")
    if not isinstance(document.get("id"), str) or not document["id"]:
        # As in binary mode: a made-up id would lose the parcel id.
        raise InvalidCloudEvent("No CloudEvent id in the structured event")
    if document.get("specversion") != "1.0":
        raise InvalidCloudEvent("Unsupported CloudEvents spec version")
    attributes = {k: v for k, v in document.items() if k not in ("data", "data_base64")}
    try:
        if isinstance(attributes.get("time"), str):
            attributes["time"] = isoparse(attributes["time"])
        return CloudEvent(attributes, _structured_data(document))
    except _SDK_PARSE_ERRORS as error:
        raise InvalidCloudEvent(f"Malformed CloudEvent: {error}") from error


def _structured_data(document: dict[str, Any]) -> bytes | None:
    # Service messages are bytes: carried in data_base64 (or, for text, in data).
    if "data_base64" in document:
        # The spec forbids data beside data_base64, but the JavaScript SDK writes both for
        # empty data (``"data": {"type": "Buffer", "data": []}``): data_base64 is the one read.
        encoded = document["data_base64"]
        if not isinstance(encoded, str):
            raise InvalidCloudEvent("Structured CloudEvent data_base64 must be a string")
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise InvalidCloudEvent("Structured CloudEvent data_base64 is not base64") from error
    data = document.get("data")
    if data is None:
        return None
    if not isinstance(data, str):
        raise InvalidCloudEvent("Structured CloudEvent data must be data_base64 or a string")
    return data.encode("utf-8")


def event_from_binary_http(headers: Mapping[str, str], body: bytes) -> BaseCloudEvent:
    """Read a CloudEvent sent in binary content mode."""
    if not any(name.lower().startswith(_CE_HEADER_PREFIX) for name in headers):
        raise InvalidCloudEvent("No CloudEvent headers (ce-*) in the request")
    if not any(name.lower() == _CE_ID_HEADER for name in headers):
        # The SDK would make up a random id, and the parcel id would be lost.
        raise InvalidCloudEvent("No CloudEvent id (ce-id) in the request")
    message = http.HTTPMessage(headers=dict(headers), body=body)
    try:
        return http.from_binary(message, _RAW_FORMAT)
    except _SDK_PARSE_ERRORS as error:
        raise InvalidCloudEvent(f"Malformed CloudEvent: {error}") from error


def event_from_pubsub_push(body: bytes) -> BaseCloudEvent:
    """Read the CloudEvent in a Pub/Sub push-subscription request body.

    The event id is the ``id`` attribute when the publisher set one (the Awala Internet
    Endpoint sets the parcel id), else the Pub/Sub message id, which is stable across
    redeliveries of the same message.
    """
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError) as error:
        # RecursionError: nesting deeper than the JSON decoder can follow.
        raise InvalidCloudEvent("Pub/Sub push body is not JSON") from error
    message = envelope.get("message") if isinstance(envelope, dict) else None
    if not isinstance(message, dict):
        raise InvalidCloudEvent("Pub/Sub push body has no message")
    attributes = message.get("attributes") or {}
    message_id = message.get("messageId") or message.get("message_id")
    if not isinstance(attributes, dict) or not all(
        isinstance(value, str) for value in attributes.values()
    ):
        raise InvalidCloudEvent("Pub/Sub message attributes must be strings")
    if not isinstance(message_id, str) or not message_id:
        raise InvalidCloudEvent("Pub/Sub message has no messageId")

    event_attributes: dict[str, Any] = dict(attributes)
    event_attributes.setdefault("specversion", "1.0")
    event_attributes["id"] = attributes.get("id") or message_id
    publish_time = message.get("publishTime") or message.get("publish_time")
    try:
        if "time" in attributes:
            event_attributes["time"] = isoparse(attributes["time"])
        elif isinstance(publish_time, str):
            event_attributes["time"] = isoparse(publish_time)
        return CloudEvent(event_attributes, _decode_pubsub_data(message.get("data")))
    except _SDK_PARSE_ERRORS as error:
        raise InvalidCloudEvent(f"Malformed CloudEvent in Pub/Sub message: {error}") from error


def event_to_binary_http(event: BaseCloudEvent) -> tuple[dict[str, str], bytes]:
    """Headers and body to POST ``event`` in binary content mode."""
    message = http.to_binary(event, _RAW_FORMAT)
    return message.headers, message.body


@dataclass(frozen=True, slots=True)
class PubSubMessage:
    data: bytes
    attributes: dict[str, str]


def event_to_pubsub_message(event: BaseCloudEvent) -> PubSubMessage:
    """The Pub/Sub message that carries ``event``: every attribute but data, as text."""
    attributes = {
        name: _attribute_text(value)
        for name, value in event.get_attributes().items()
        if value is not None
    }
    return PubSubMessage(data=_RAW_FORMAT.write_data(event.get_data(), None), attributes=attributes)


def _decode_pubsub_data(data: object) -> bytes | None:
    if data is None:
        return None
    if not isinstance(data, str):
        raise InvalidCloudEvent("Pub/Sub message data must be base64 text")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as error:
        raise InvalidCloudEvent("Pub/Sub message data is not valid base64") from error


def _attribute_text(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)
