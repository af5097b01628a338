"""What to do with each incoming service message, decided from the message alone.

Nothing unverified enters Temporal: every message is parsed and checked here, once, before
any workflow is started or signalled. Signatures are verified (VeraId SignatureBundles,
account requests, delivery authorisations), and each content type has a size cap, so the
work per message is bounded whatever its bytes. Workflow inputs and signals carry only what
the checks established. Routing does no I/O: it returns what to do, and the web layer does it.

A decision names its workflow by the workflow's own run and signal methods, and carries the
``contract`` dataclasses they take, so mypy checks every input that crosses into Temporal.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from temporalio.common import TypedSearchAttributes
from temporalio.types import MethodAsyncSingleParam

import veraid
from awala.private_endpoint_conn_params import (
    InvalidPrivateEndpointConnParams,
    read_connection_params,
)
from awala.service_messages import IncomingServiceMessage
from contract.accounts import AccountCreationInput, AccountRequestReceived
from contract.connection_params import ConnectionParamsInput
from contract.messages import Forwarding
from contract.pairing import (
    MAX_HISTORY_EVENTS,
    PAIR_LINGER,
    ContactPairingRefusalToSend,
    PairingInput,
    PairingRequestReceived,
)
from letro.account_messages import (
    check_member_key,
    parse_account_request,
    verify_account_request,
)
from letro.connection_params import parse_connection_params_request
from letro.contact_pairing import (
    PairingDrop,
    PairingRefusal,
    VerifiedPairingRequest,
    check_contact_pairing_request,
)
from letro.content_types import (
    ACCOUNT_REQUEST,
    CONNECTION_PARAMS_REQUEST,
    CONTACT_PAIRING_AUTHORISATION,
    CONTACT_PAIRING_REQUEST,
    MAX_CONTENT_LENGTHS,
    PAIRING_AUTH,
    PAIRING_AUTH_TMP,
    PAIRING_COMPLETION_TMP,
    PAIRING_REQUEST_TMP,
)
from letro.errors import (
    LetroProtocolError,
    MalformedConnectionParamsRequest,
    MalformedPairingRequest,
    UnusableMemberKey,
)
from letro.legacy_pairing import parse_pairing_request
from workflows import (
    account_creation,
    connection_params,
    forwarding,
    legacy_pairing,
    veraid_pairing,
    visibility,
)
from workflows.account_creation import AccountCreation
from workflows.connection_params import ConnectionParamsRetrieval
from workflows.forwarding import ForwardServiceMessage
from workflows.legacy_pairing import LegacyContactPairing
from workflows.veraid_pairing import ContactPairingRefusal, VeraidContactPairing


@dataclass(frozen=True)
class RoutingOptions:
    pairing_request_ttl: timedelta
    connection_params_retry_window: timedelta = timedelta(minutes=5)
    veraid_trust_anchors: tuple[veraid.TrustAnchor, ...] = veraid.IANA_TRUST_ANCHORS
    # Validated DNSSEC chains and certificates, shared by every request of this process:
    # one organisation's chain is checked once, not per request. Not thread-safe, like
    # routing itself, which runs on the ingress's event loop.
    verification_cache: veraid.VerificationCache = field(default_factory=veraid.VerificationCache)
    pairing_history_events: int = MAX_HISTORY_EVENTS
    # How long a taken parcel has no second effect (DEDUP_WINDOW_SECONDS), for every type.
    dedup_window: timedelta = timedelta(days=7)
    # How long a pair stays open after its last request (PAIRING_LINGER_SECONDS).
    pairing_linger: timedelta = PAIR_LINGER

    @property
    def pair_linger(self) -> timedelta:
        # Within the window the pair remembers its parcels itself, and the ingress after.
        return min(self.dedup_window, self.pairing_linger)


WorkflowT = TypeVar("WorkflowT")
InputT = TypeVar("InputT")
SignalT = TypeVar("SignalT")


class HandOver:
    """A decision to hand the message to Temporal: :class:`SignalWithStart` or :class:`StartOnce`.

    Not generic, on purpose: a handler declared to return a ``HandOver`` gives mypy no type
    arguments to assume, so it infers them from the workflow's methods and checks the inputs
    against those (given ``SignalWithStart[Any, Any, Any]`` it would accept any input).
    """

    workflow_id: str
    log_fields: Mapping[str, str]
    search_attributes: TypedSearchAttributes
    summary: str | None


@dataclass(frozen=True)
class SignalWithStart(HandOver, Generic[WorkflowT, InputT, SignalT]):
    """Signal workflow ``workflow_id``, starting it with ``start_input`` if it is not running.

    ``workflow`` is the workflow's ``@workflow.run`` method and ``signal`` its signal
    method, so mypy checks both inputs against what the workflow declares it takes.
    """

    workflow: MethodAsyncSingleParam[WorkflowT, InputT, Any]
    workflow_id: str
    start_input: InputT
    signal: Callable[[WorkflowT, SignalT], None]
    signal_input: SignalT
    log_fields: Mapping[str, str] = field(default_factory=dict)
    # What the Web UI lists: applied only when this starts the workflow.
    search_attributes: TypedSearchAttributes = TypedSearchAttributes.empty
    summary: str | None = None

    @property
    def signal_name(self) -> str:
        # The SDK names a signal after its method when not told otherwise, and our signal
        # methods are named after their signals (``pairing_request``...): the method is the
        # one home of the name, which the client needs as a string for signal-with-start.
        return self.signal.__name__


@dataclass(frozen=True)
class StartOnce(HandOver, Generic[InputT]):
    """Start workflow ``workflow_id``; if it already exists or existed, do nothing.

    For one-shot workflows whose id is derived from the parcel: a redelivered message
    finds its workflow and has no second effect. ``workflow`` is its run method.
    """

    workflow: MethodAsyncSingleParam[Any, InputT, Any]
    workflow_id: str
    start_input: InputT
    log_fields: Mapping[str, str] = field(default_factory=dict)
    search_attributes: TypedSearchAttributes = TypedSearchAttributes.empty
    summary: str | None = None


@dataclass(frozen=True)
class Ignore:
    """Drop the message: it can never succeed and the protocol defines no reply for it."""

    reason: str
    log_fields: Mapping[str, str] = field(default_factory=dict)


Decision = HandOver | Ignore


class UnsupportedContentType(Exception):
    def __init__(self, content_type: str) -> None:
        super().__init__(f"Unsupported service message content type: {content_type[:100]}")
        self.content_type = content_type


class ContentTooLarge(Exception):
    """The content is larger than any genuine message of its type: refused unread."""

    def __init__(self, content_type: str, length: int, limit: int) -> None:
        super().__init__(f"{content_type} content of {length} bytes exceeds {limit} bytes")
        self.limit = limit


def _legacy_pairing_request(
    message: IncomingServiceMessage, options: RoutingOptions, now: datetime
) -> Decision:
    try:
        request = parse_pairing_request(message.content)
    except MalformedPairingRequest as error:
        return Ignore("Refused malformed legacy pairing request", {"reason": str(error)})
    workflow_id = legacy_pairing.workflow_id_for(
        request.requester_veraid_id, request.target_veraid_id
    )
    return SignalWithStart(
        workflow=LegacyContactPairing.run,
        workflow_id=workflow_id,
        start_input=PairingInput(
            veraid_ids=sorted((request.requester_veraid_id, request.target_veraid_id)),
            request_ttl_seconds=options.pairing_request_ttl.total_seconds(),
            max_history_events=options.pairing_history_events,
            dedup_window_seconds=options.pair_linger.total_seconds(),
        ),
        signal=LegacyContactPairing.pairing_request,
        signal_input=PairingRequestReceived(
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
        search_attributes=visibility.at_start(visibility.LEGACY_PAIRING, pending=True),
        summary=_pair_summary(
            "Legacy pairing", request.requester_veraid_id, request.target_veraid_id
        ),
    )


def _pair_summary(protocol: str, veraid_id_a: str, veraid_id_b: str) -> str:
    first, second = sorted((veraid_id_a, veraid_id_b))
    return f"{protocol}: {first} and {second}"


def _connection_params_request(
    message: IncomingServiceMessage, options: RoutingOptions, now: datetime
) -> Decision:
    try:
        request = parse_connection_params_request(message.content)
    except MalformedConnectionParamsRequest as error:
        return Ignore("Refused malformed connection params request", {"reason": str(error)})
    return StartOnce(
        workflow=ConnectionParamsRetrieval.run,
        workflow_id=connection_params.workflow_id_for(message.sender_id, message.parcel_id),
        start_input=ConnectionParamsInput(
            parcel_id=message.parcel_id,
            server_endpoint_id=message.recipient_id,
            requester_endpoint_id=message.sender_id,
            domain_name=request.domain_name,
            ascii_domain_name=request.ascii_domain_name,
            retry_seconds=options.connection_params_retry_window.total_seconds(),
        ),
        log_fields={"internetAddress": request.ascii_domain_name},
        search_attributes=visibility.at_start(visibility.CONNECTION_PARAMS),
        summary=f"Connection params of {request.ascii_domain_name}",
    )


def _contact_pairing_request(
    message: IncomingServiceMessage, options: RoutingOptions, now: datetime
) -> Decision:
    verdict = check_contact_pairing_request(
        message.content,
        message.sender_id,
        now,
        trust_anchors=options.veraid_trust_anchors,
        cache=options.verification_cache,
    )
    if isinstance(verdict, PairingDrop):
        return Ignore(
            "Refused unverifiable contact pairing request", {"reason": verdict.explanation}
        )
    if isinstance(verdict, PairingRefusal):
        return StartOnce(
            workflow=ContactPairingRefusal.run,
            workflow_id=veraid_pairing.refusal_workflow_id(message.sender_id, message.parcel_id),
            start_input=ContactPairingRefusalToSend(
                parcel_id=message.parcel_id,
                sender_endpoint_id=message.sender_id,
                server_endpoint_id=message.recipient_id,
                reason=verdict.reason.name,
                failure_b64=base64.b64encode(verdict.failure_message).decode("ascii"),
            ),
            log_fields={"reason": verdict.reason.name, "explanation": verdict.explanation},
            search_attributes=visibility.at_start(visibility.PAIRING_REFUSAL),
            summary=f"Contact pairing request refused: {verdict.reason.name}",
        )
    return _signal_verified_pair(message, options, verdict)


def _signal_verified_pair(
    message: IncomingServiceMessage, options: RoutingOptions, request: VerifiedPairingRequest
) -> Decision:
    requester, target = request.requester_veraid_id, request.target_veraid_id
    return SignalWithStart(
        workflow=VeraidContactPairing.run,
        workflow_id=veraid_pairing.workflow_id_for(requester, target),
        start_input=PairingInput(
            veraid_ids=sorted((requester, target)),
            request_ttl_seconds=options.pairing_request_ttl.total_seconds(),
            max_history_events=options.pairing_history_events,
            dedup_window_seconds=options.pair_linger.total_seconds(),
        ),
        signal=VeraidContactPairing.pairing_request,
        signal_input=PairingRequestReceived(
            parcel_id=message.parcel_id,
            server_endpoint_id=message.recipient_id,
            requester_endpoint_id=message.sender_id,
            requester_veraid_id=requester,
            target_veraid_id=target,
            requester_id_key_b64=base64.b64encode(request.requester_endpoint_key).decode("ascii"),
            signature_bundle_b64=base64.b64encode(request.signature_bundle).decode("ascii"),
        ),
        log_fields={"requesterVeraidId": requester, "targetVeraidId": target},
        search_attributes=visibility.at_start(visibility.VERAID_PAIRING, pending=True),
        summary=_pair_summary("VeraId pairing", requester, target),
    )


def _account_request(
    message: IncomingServiceMessage, options: RoutingOptions, now: datetime
) -> Decision:
    try:
        request = parse_account_request(message.content)
        verify_account_request(request)
    except LetroProtocolError as error:
        return Ignore(
            "Refused account creation request",
            {"reason": str(error), "err": type(error).__name__},
        )
    try:
        # After the signature, so only a request its key really signed is reported this way.
        check_member_key(request.public_key_der)
    except UnusableMemberKey as error:
        return Ignore(
            "Refused account creation request: its key cannot be a VeraId member key",
            {"reason": str(error), "err": type(error).__name__},
        )
    return SignalWithStart(
        workflow=AccountCreation.run,
        workflow_id=account_creation.workflow_id_for(message.sender_id, message.content),
        start_input=AccountCreationInput(),
        signal=AccountCreation.account_request,
        signal_input=AccountRequestReceived(
            parcel_id=message.parcel_id,
            server_endpoint_id=message.recipient_id,
            sender_endpoint_id=message.sender_id,
            requested_user_name=request.user_name,
            locale=request.locale,
            public_key_b64=base64.b64encode(request.public_key_der).decode("ascii"),
        ),
        log_fields={"requestedUserName": request.user_name, "locale": request.locale},
        search_attributes=visibility.at_start(visibility.ACCOUNT_CREATION),
        summary=f"Account creation ({request.locale})",
    )


def _pairing_authorisation(
    message: IncomingServiceMessage, options: RoutingOptions, legacy: bool
) -> Decision:
    # One DER parse and one RSA verification (the PDA is signed by the granter), bounded by
    # awala.private_endpoint_conn_params; it decides the recipient.
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
        workflow=ForwardServiceMessage.run,
        workflow_id=forwarding.workflow_id_for(message.sender_id, message.parcel_id),
        start_input=Forwarding(
            server_endpoint_id=message.recipient_id,
            recipient_endpoint_id=routing.grantee_id,
            content_type=content_type,
            content_b64=base64.b64encode(content).decode("ascii"),
        ),
        log_fields={"granterId": routing.granter_id, "granteeId": routing.grantee_id},
        search_attributes=visibility.at_start(visibility.AUTHORISATION),
        summary="Pairing authorisation forwarded to its grantee",
    )


def _current_pairing_authorisation(
    message: IncomingServiceMessage, options: RoutingOptions, now: datetime
) -> Decision:
    return _pairing_authorisation(message, options, legacy=False)


def _legacy_pairing_authorisation(
    message: IncomingServiceMessage, options: RoutingOptions, now: datetime
) -> Decision:
    return _pairing_authorisation(message, options, legacy=True)


_Handler = Callable[[IncomingServiceMessage, RoutingOptions, datetime], Decision]
_ROUTES: Mapping[str, _Handler] = {
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


def route(message: IncomingServiceMessage, options: RoutingOptions, now: datetime) -> Decision:
    """Decide what to do with ``message`` received at ``now``.

    Raises:
        UnsupportedContentType: if nothing handles its content type.
        ContentTooLarge: if its content is over its type's cap.
    """
    handler = _ROUTES.get(message.content_type)
    if handler is None:
        raise UnsupportedContentType(message.content_type)
    limit = MAX_CONTENT_LENGTHS[message.content_type]
    if len(message.content) > limit:
        raise ContentTooLarge(message.content_type, len(message.content), limit)
    return handler(message, options, now)
