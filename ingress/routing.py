"""Which workflow each incoming service message goes to, decided from the message alone.

The ingress checks only what it needs to route a message; verification and every
effect happen in the workflow. Where a route depends on what a signed message claims
(the pair a contact pairing request names), it is read unverified and the workflow it
leads to verifies it before acting on it. Routing is pure: it returns what to do, and the web
layer does it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import veraid
from activities.messages import IncomingPairingRequest, PairingRequestReceived
from awala.private_endpoint_conn_params import (
    InvalidPrivateEndpointConnParams,
    read_connection_params,
)
from awala.service_messages import IncomingServiceMessage
from letro.connection_params import parse_connection_params_request
from letro.contact_pairing import MalformedContactPairingRequest, parse_contact_pairing_request
from letro.content_types import (
    ACCOUNT_REQUEST,
    CONNECTION_PARAMS_REQUEST,
    CONTACT_PAIRING_AUTHORISATION,
    CONTACT_PAIRING_REQUEST,
    PAIRING_AUTH,
    PAIRING_AUTH_TMP,
    PAIRING_COMPLETION_TMP,
    PAIRING_REQUEST_TMP,
)
from letro.errors import (
    InvalidVeraidId,
    MalformedConnectionParamsRequest,
    MalformedPairingRequest,
)
from letro.legacy_pairing import parse_pairing_request
from letro.veraid_ids import pairing_key
from workflows import forwarding
from workflows.account_creation import SIGNAL_NAME as ACCOUNT_REQUEST_SIGNAL
from workflows.account_creation import (
    AccountCreation,
    AccountCreationInput,
    AccountRequestReceived,
)
from workflows.account_creation import workflow_id_for as account_workflow_id_for
from workflows.connection_params import ConnectionParamsInput, ConnectionParamsRetrieval
from workflows.connection_params import workflow_id_for as connection_params_workflow_id
from workflows.forwarding import Forwarding, ForwardServiceMessage
from workflows.legacy_pairing import (
    LegacyContactPairing,
    LegacyPairingInput,
    LegacyPairingRequestReceived,
    workflow_id_for,
)
from workflows.pairing import SIGNAL_NAME as PAIRING_SIGNAL
from workflows.pairing import PairingInput
from workflows.veraid_pairing import (
    REQUEST_WORKFLOW_NAME,
    VeraidContactPairing,
    request_workflow_id,
)
from workflows.veraid_pairing import workflow_id_for as veraid_pairing_workflow_id


@dataclass(frozen=True)
class RoutingOptions:
    pairing_request_ttl: timedelta
    connection_params_retry_window: timedelta = timedelta(minutes=5)


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
class StartOnce:
    """Start workflow ``workflow_id``; if it already exists or existed, do nothing.

    For one-shot workflows whose id is derived from the parcel: a redelivered message
    finds its workflow and has no second effect.
    """

    workflow: str
    workflow_id: str
    start_input: object
    log_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ignore:
    """Drop the message: it can never succeed and the protocol defines no reply for it."""

    reason: str
    log_fields: Mapping[str, str] = field(default_factory=dict)


Decision = SignalWithStart | StartOnce | Ignore


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
        signal=PAIRING_SIGNAL,
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


def _connection_params_request(
    message: IncomingServiceMessage, options: RoutingOptions
) -> Decision:
    try:
        request = parse_connection_params_request(message.content)
    except MalformedConnectionParamsRequest as error:
        return Ignore("Refused malformed connection params request", {"reason": str(error)})
    return StartOnce(
        workflow=ConnectionParamsRetrieval.__name__,
        workflow_id=connection_params_workflow_id(message.sender_id, message.parcel_id),
        start_input=ConnectionParamsInput(
            parcel_id=message.parcel_id,
            server_endpoint_id=message.recipient_id,
            requester_endpoint_id=message.sender_id,
            domain_name=request.domain_name,
            ascii_domain_name=request.ascii_domain_name,
            retry_seconds=options.connection_params_retry_window.total_seconds(),
        ),
        log_fields={"internetAddress": request.ascii_domain_name},
    )


def _claimed_pair(content: bytes) -> tuple[str, str] | None:
    """The (requester, target) ids a contact pairing request claims, in matching form.

    None when the bytes name no pair that could ever match: then only verification can
    tell whether the sender gets a failure message or nothing.
    """
    try:
        claimed = veraid.read_signature_bundle(content)
    except veraid.VeraidError:
        return None
    if claimed.member.user is None or claimed.plaintext is None:
        return None
    try:
        target = parse_contact_pairing_request(claimed.plaintext).target_veraid_id
        requester_key, target_key = pairing_key(str(claimed.member)), pairing_key(target)
    except (MalformedContactPairingRequest, InvalidVeraidId):
        return None
    return None if requester_key == target_key else (requester_key, target_key)


def _contact_pairing_request(message: IncomingServiceMessage, options: RoutingOptions) -> Decision:
    # Routed by what the bundle claims, unverified: the pair workflow verifies each request
    # before it counts, and a request naming no pair is verified (to be refused or dropped)
    # by a workflow of its own.
    content_b64 = base64.b64encode(message.content).decode("ascii")
    pair = _claimed_pair(message.content)
    if pair is None:
        return StartOnce(
            workflow=REQUEST_WORKFLOW_NAME,
            workflow_id=request_workflow_id(message.sender_id, message.parcel_id),
            start_input=IncomingPairingRequest(
                parcel_id=message.parcel_id,
                sender_endpoint_id=message.sender_id,
                server_endpoint_id=message.recipient_id,
                content_b64=content_b64,
                request_ttl_seconds=options.pairing_request_ttl.total_seconds(),
            ),
        )
    requester, target = pair
    return SignalWithStart(
        workflow=VeraidContactPairing.__name__,
        workflow_id=veraid_pairing_workflow_id(requester, target),
        start_input=PairingInput(
            veraid_ids=sorted(pair),
            request_ttl_seconds=options.pairing_request_ttl.total_seconds(),
        ),
        signal=PAIRING_SIGNAL,
        signal_input=PairingRequestReceived(
            parcel_id=message.parcel_id,
            server_endpoint_id=message.recipient_id,
            requester_endpoint_id=message.sender_id,
            requester_veraid_id=requester,
            target_veraid_id=target,
            requester_id_key_b64="",  # filled in from the verified request
            signature_bundle_b64=content_b64,
        ),
        log_fields={"requesterVeraidId": requester, "targetVeraidId": target},
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


def _pairing_authorisation(message: IncomingServiceMessage, legacy: bool) -> Decision:
    # Cheap enough for the ingress (one DER parse, one hash), and it decides the recipient.
    try:
        routing = read_connection_params(message.content)
    except InvalidPrivateEndpointConnParams as error:
        return Ignore("Refused malformed connection params", {"reason": str(error)})
    if routing.granter_id != message.sender_id:
        return Ignore(
            "Refused connection params not issued by sender",
            {"messageSenderId": message.sender_id, "granterId": str(routing.granter_id)},
        )
    if legacy:
        content_type = PAIRING_COMPLETION_TMP
        content = f"{routing.granter_id},".encode() + base64.b64encode(message.content)
    else:
        content_type, content = message.content_type, message.content
    return StartOnce(
        workflow=ForwardServiceMessage.__name__,
        workflow_id=forwarding.workflow_id_for(message.sender_id, message.parcel_id),
        start_input=Forwarding(
            server_endpoint_id=message.recipient_id,
            recipient_endpoint_id=routing.grantee_id,
            content_type=content_type,
            content_b64=base64.b64encode(content).decode("ascii"),
        ),
        log_fields={"granterId": routing.granter_id, "granteeId": routing.grantee_id},
    )


def _current_pairing_authorisation(
    message: IncomingServiceMessage, options: RoutingOptions
) -> Decision:
    return _pairing_authorisation(message, legacy=False)


def _legacy_pairing_authorisation(
    message: IncomingServiceMessage, options: RoutingOptions
) -> Decision:
    return _pairing_authorisation(message, legacy=True)


_ROUTES: Mapping[str, Callable[[IncomingServiceMessage, RoutingOptions], Decision]] = {
    PAIRING_REQUEST_TMP: _legacy_pairing_request,
    CONNECTION_PARAMS_REQUEST: _connection_params_request,
    CONTACT_PAIRING_REQUEST: _contact_pairing_request,
    # The original server and Letro for Android use "pairing-auth"; the published docs
    # (seed 002) say "contact-pairing.authorisation". Both are accepted and forwarded as is.
    PAIRING_AUTH: _current_pairing_authorisation,
    CONTACT_PAIRING_AUTHORISATION: _current_pairing_authorisation,
    PAIRING_AUTH_TMP: _legacy_pairing_authorisation,
    ACCOUNT_REQUEST: _account_request,
}

SUPPORTED_CONTENT_TYPES = frozenset(_ROUTES)


def route(message: IncomingServiceMessage, options: RoutingOptions) -> Decision:
    """Decide what to do with ``message``; raise UnsupportedContentType if nothing handles it."""
    handler = _ROUTES.get(message.content_type)
    if handler is None:
        raise UnsupportedContentType(message.content_type)
    return handler(message, options)
