"""Routing of the pairing messages, decided from the message alone (pure: no stack needed)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta

import pytest

from activities.messages import IncomingPairingRequest, PairingRequestReceived
from awala.service_messages import IncomingServiceMessage
from ingress.routing import Ignore, RoutingOptions, SignalWithStart, StartOnce, route
from letro.content_types import (
    CONTACT_PAIRING_AUTHORISATION,
    CONTACT_PAIRING_REQUEST,
    PAIRING_AUTH,
    PAIRING_AUTH_TMP,
    PAIRING_COMPLETION_TMP,
)
from tests.pairing_helpers import (
    connection_params,
    endpoint_id,
    make_org,
    new_rsa_key,
    new_veraid_agent,
)
from workflows.forwarding import Forwarding
from workflows.pairing import PairingInput

OPTIONS = RoutingOptions(pairing_request_ttl=timedelta(days=90))
GRANTER, GRANTEE = new_rsa_key(), new_rsa_key()
PARAMS = connection_params(GRANTER, GRANTEE)


def message(
    content_type: str, content: bytes, sender_id: str = "0sender"
) -> IncomingServiceMessage:
    return IncomingServiceMessage("parcel-1", sender_id, "0server", content_type, content)


ORG = make_org()
ALICE, BOB = new_veraid_agent(ORG, "alice"), new_veraid_agent(ORG, "bob")


def test_contact_pairing_request_is_signalled_to_the_pair_it_claims() -> None:
    bundle = ALICE.pairing_request(BOB.veraid_id.upper())

    decision = route(message(CONTACT_PAIRING_REQUEST, bundle, ALICE.endpoint_id), OPTIONS)

    assert isinstance(decision, SignalWithStart)
    ids = sorted([ALICE.veraid_id, BOB.veraid_id])
    assert decision.workflow == "VeraidContactPairing"
    assert decision.workflow_id == f"veraid-pairing:{ids[0]}:{ids[1]}"
    assert decision.start_input == PairingInput(veraid_ids=ids, request_ttl_seconds=90 * 86400)
    # Unverified: the key is only filled in once the pair workflow has verified the bundle.
    assert decision.signal_input == PairingRequestReceived(
        parcel_id="parcel-1",
        server_endpoint_id="0server",
        requester_endpoint_id=ALICE.endpoint_id,
        requester_veraid_id=ALICE.veraid_id,
        target_veraid_id=BOB.veraid_id,
        requester_id_key_b64="",
        signature_bundle_b64=base64.b64encode(bundle).decode(),
    )


NO_PAIR = {
    "not a bundle": lambda: b"anything",
    "signed by the organisation bot": lambda: ORG.bot_request(ALICE, BOB.veraid_id),
    "target not a user id": lambda: ALICE.pairing_request("example.com"),
    "requester as target": lambda: ALICE.pairing_request(ALICE.veraid_id.title()),
    "plaintext not a request": lambda: ALICE.pairing_request("", plaintext=b"a,b,c"),
}


@pytest.mark.parametrize("make_bundle", NO_PAIR.values(), ids=NO_PAIR.keys())
def test_contact_pairing_request_naming_no_pair_gets_a_workflow_of_its_own(
    make_bundle: Callable[[], bytes],
) -> None:
    bundle = make_bundle()

    decision = route(message(CONTACT_PAIRING_REQUEST, bundle), OPTIONS)

    assert isinstance(decision, StartOnce)
    assert decision.workflow == "ContactPairingRequest"
    assert decision.workflow_id == "contact-pairing-request:0sender:parcel-1"
    assert decision.start_input == IncomingPairingRequest(
        parcel_id="parcel-1",
        sender_endpoint_id="0sender",
        server_endpoint_id="0server",
        content_b64=base64.b64encode(bundle).decode(),
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
