"""Which workflow each incoming service message goes to, decided from the message alone.

The ingress checks only what it needs to route a message; verification and every
effect happen in the workflow. Routing is pure: it returns what to do, and the web
layer does it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from awala.service_messages import IncomingServiceMessage
from letro.content_types import ACCOUNT_REQUEST, PAIRING_REQUEST_TMP
from letro.errors import MalformedPairingRequest
from letro.legacy_pairing import parse_pairing_request
from workflows.account_creation import SIGNAL_NAME as ACCOUNT_REQUEST_SIGNAL
from workflows.account_creation import (
    AccountCreation,
    AccountCreationInput,
    AccountRequestReceived,
)
from workflows.account_creation import workflow_id_for as account_workflow_id_for
from workflows.legacy_pairing import (
    SIGNAL_NAME as LEGACY_PAIRING_SIGNAL,
)
from workflows.legacy_pairing import (
    LegacyContactPairing,
    LegacyPairingInput,
    LegacyPairingRequestReceived,
    workflow_id_for,
)


@dataclass(frozen=True)
class RoutingOptions:
    pairing_request_ttl: timedelta


@dataclass(frozen=True)
class SignalWithStart:
    """Signal workflow ``workflow_id``, starting it with ``start_input`` if it is not running."""

    workflow: str
    workflow_id: str
    start_input: object
    signal: str
    signal_input: object
    log_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ignore:
    """Drop the message: it can never succeed and the protocol defines no reply for it."""

    reason: str
    log_fields: Mapping[str, str] = field(default_factory=dict)


Decision = SignalWithStart | Ignore


class UnsupportedContentType(Exception):
    def __init__(self, content_type: str) -> None:
        super().__init__(f"Unsupported service message content type: {content_type[:100]}")
        self.content_type = content_type


def _legacy_pairing_request(message: IncomingServiceMessage, options: RoutingOptions) -> Decision:
    try:
        request = parse_pairing_request(message.content)
    except MalformedPairingRequest as error:
        return Ignore("Refused malformed legacy pairing request", {"reason": str(error)})
    workflow_id = workflow_id_for(request.requester_veraid_id, request.target_veraid_id)
    return SignalWithStart(
        workflow=LegacyContactPairing.__name__,
        workflow_id=workflow_id,
        start_input=LegacyPairingInput(
            veraid_ids=sorted((request.requester_veraid_id, request.target_veraid_id)),
            request_ttl_seconds=options.pairing_request_ttl.total_seconds(),
        ),
        signal=LEGACY_PAIRING_SIGNAL,
        signal_input=LegacyPairingRequestReceived(
            parcel_id=message.parcel_id,
            server_endpoint_id=message.recipient_id,
            requester_endpoint_id=message.sender_id,
            requester_veraid_id=request.requester_veraid_id,
            target_veraid_id=request.target_veraid_id,
            requester_id_key_b64=base64.b64encode(request.requester_id_key).decode("ascii"),
        ),
        log_fields={
            "requesterVeraidId": request.requester_veraid_id,
            "targetVeraidId": request.target_veraid_id,
        },
    )


def _account_request(message: IncomingServiceMessage, _: RoutingOptions) -> Decision:
    # Parsed and verified in the workflow's first activity: the ingress only routes.
    return SignalWithStart(
        workflow=AccountCreation.__name__,
        workflow_id=account_workflow_id_for(message.sender_id, message.content),
        start_input=AccountCreationInput(),
        signal=ACCOUNT_REQUEST_SIGNAL,
        signal_input=AccountRequestReceived(
            parcel_id=message.parcel_id,
            server_endpoint_id=message.recipient_id,
            sender_endpoint_id=message.sender_id,
            content_b64=base64.b64encode(message.content).decode("ascii"),
        ),
    )


_ROUTES: Mapping[str, Callable[[IncomingServiceMessage, RoutingOptions], Decision]] = {
    PAIRING_REQUEST_TMP: _legacy_pairing_request,
    ACCOUNT_REQUEST: _account_request,
}

SUPPORTED_CONTENT_TYPES = frozenset(_ROUTES)


def route(message: IncomingServiceMessage, options: RoutingOptions) -> Decision:
    """Decide what to do with ``message``; raise UnsupportedContentType if nothing handles it."""
    handler = _ROUTES.get(message.content_type)
    if handler is None:
        raise UnsupportedContentType(message.content_type)
    return handler(message, options)
