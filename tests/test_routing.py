"""Routing of the pairing messages, decided from the message alone (pure: no stack needed)."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from activities.messages import IncomingPairingRequest
from awala.service_messages import IncomingServiceMessage
from ingress.routing import Ignore, RoutingOptions, StartOnce, route
from letro.content_types import (
    CONTACT_PAIRING_AUTHORISATION,
    CONTACT_PAIRING_REQUEST,
    PAIRING_AUTH,
    PAIRING_AUTH_TMP,
    PAIRING_COMPLETION_TMP,
)
from tests.pairing_helpers import connection_params, endpoint_id, new_rsa_key
from workflows.forwarding import Forwarding

OPTIONS = RoutingOptions(pairing_request_ttl=timedelta(days=90))
GRANTER, GRANTEE = new_rsa_key(), new_rsa_key()
PARAMS = connection_params(GRANTER, GRANTEE)


def message(
    content_type: str, content: bytes, sender_id: str = "0sender"
) -> IncomingServiceMessage:
    return IncomingServiceMessage("parcel-1", sender_id, "0server", content_type, content)


def test_contact_pairing_request_starts_a_per_message_workflow_unread() -> None:
    decision = route(message(CONTACT_PAIRING_REQUEST, b"anything"), OPTIONS)

    assert isinstance(decision, StartOnce)
    assert decision.workflow == "ContactPairingRequest"
    assert decision.workflow_id == "contact-pairing-request:0sender:parcel-1"
    assert decision.start_input == IncomingPairingRequest(
        parcel_id="parcel-1",
        sender_endpoint_id="0sender",
        server_endpoint_id="0server",
        content_b64=base64.b64encode(b"anything").decode(),
        request_ttl_seconds=90 * 86400,
    )


@pytest.mark.parametrize("content_type", [PAIRING_AUTH, CONTACT_PAIRING_AUTHORISATION])
def test_authorisation_is_forwarded_with_the_type_received(content_type: str) -> None:
    decision = route(message(content_type, PARAMS, endpoint_id(GRANTER)), OPTIONS)

    assert isinstance(decision, StartOnce)
    assert decision.workflow_id == f"forward:{endpoint_id(GRANTER)}:parcel-1"
    assert decision.start_input == Forwarding(
        server_endpoint_id="0server",
        recipient_endpoint_id=endpoint_id(GRANTEE),
        content_type=content_type,
        content_b64=base64.b64encode(PARAMS).decode(),
    )


def test_legacy_authorisation_is_forwarded_as_a_completion() -> None:
    decision = route(message(PAIRING_AUTH_TMP, PARAMS, endpoint_id(GRANTER)), OPTIONS)

    assert isinstance(decision, StartOnce)
    assert isinstance(decision.start_input, Forwarding)
    assert decision.start_input.content_type == PAIRING_COMPLETION_TMP
    completion = base64.b64decode(decision.start_input.content_b64)
    assert completion == f"{endpoint_id(GRANTER)},".encode() + base64.b64encode(PARAMS)


@pytest.mark.parametrize("content_type", [PAIRING_AUTH, PAIRING_AUTH_TMP])
def test_authorisation_from_someone_else_is_ignored(content_type: str) -> None:
    decision = route(message(content_type, PARAMS, endpoint_id(GRANTEE)), OPTIONS)

    assert isinstance(decision, Ignore)
    assert decision.reason == "Refused connection params not issued by sender"
    assert decision.log_fields == {
        "messageSenderId": endpoint_id(GRANTEE),
        "granterId": endpoint_id(GRANTER),
    }


def test_malformed_authorisation_is_ignored_with_the_reason() -> None:
    decision = route(message(PAIRING_AUTH, b"\x30\x00", endpoint_id(GRANTER)), OPTIONS)

    assert isinstance(decision, Ignore)
    assert decision.reason == "Refused malformed connection params"
    assert decision.log_fields["reason"]
