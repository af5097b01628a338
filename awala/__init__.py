"""Awala Internet Endpoint service messages as CloudEvents, sans I/O.

The Awala Internet Endpoint turns each parcel it receives into an *incoming service
message* CloudEvent and takes our replies as *outgoing service message* CloudEvents.
This package maps between those events and plain values, for the two transports the
endpoint supports: binary-mode HTTP and Google Pub/Sub. It performs no I/O.
"""

from awala.cloudevents import (
    PubSubMessage,
    event_from_binary_http,
    event_from_pubsub_push,
    event_to_binary_http,
    event_to_pubsub_message,
)
from awala.connection_params import (
    CONNECTION_PARAMS_CONTENT_TYPE,
    NodeConnectionParams,
    SessionKey,
    parse_node_connection_params,
    serialise_node_connection_params,
)
from awala.errors import (
    AwalaError,
    InvalidCloudEvent,
    InvalidConnectionParams,
    InvalidServiceMessage,
    InvalidTargetHost,
)
from awala.service_messages import (
    INCOMING_SERVICE_MESSAGE_TYPE,
    OUTGOING_SERVICE_MESSAGE_TYPE,
    IncomingServiceMessage,
    OutgoingServiceMessage,
    add_months,
    incoming_message_from_event,
    outgoing_message_to_event,
)

__all__ = [
    "CONNECTION_PARAMS_CONTENT_TYPE",
    "INCOMING_SERVICE_MESSAGE_TYPE",
    "OUTGOING_SERVICE_MESSAGE_TYPE",
    "AwalaError",
    "IncomingServiceMessage",
    "InvalidCloudEvent",
    "InvalidConnectionParams",
    "InvalidServiceMessage",
    "InvalidTargetHost",
    "NodeConnectionParams",
    "OutgoingServiceMessage",
    "PubSubMessage",
    "SessionKey",
    "add_months",
    "event_from_binary_http",
    "event_from_pubsub_push",
    "event_to_binary_http",
    "event_to_pubsub_message",
    "incoming_message_from_event",
    "outgoing_message_to_event",
    "parse_node_connection_params",
    "serialise_node_connection_params",
]
