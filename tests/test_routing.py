"""Routing of the pairing messages, decided from the message alone (pure: no stack needed)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from awala.service_messages import IncomingServiceMessage
from contract.accounts import AccountCreationInput, AccountRequestReceived
from contract.messages import Forwarding
from contract.pairing import ContactPairingRefusalToSend, PairingInput, PairingRequestReceived
from infra.agents import (
    VeraidAgent,
    connection_params,
    endpoint_id,
    make_org,
    new_agent,
    new_rsa_key,
    new_veraid_agent,
    spki,
)
from ingress.routing import (
    ContentTooLarge,
    Decision,
    Ignore,
    RoutingOptions,
    SignalWithStart,
    StartOnce,
    route,
)
from letro.contact_pairing import ContactPairingFailureReason, parse_contact_pairing_failure
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
from tests.account_helpers import build_request, pss_request, pss_spki
from tests.account_helpers import spki as key_spki
from workflows.account_creation import AccountCreation
from workflows.legacy_pairing import LegacyContactPairing
from workflows.veraid_pairing import ContactPairingRefusal, VeraidContactPairing

ORG = make_org()
OPTIONS = RoutingOptions(
    pairing_request_ttl=timedelta(days=90), veraid_trust_anchors=(ORG.chain.trust_anchor,)
)
GRANTER, GRANTEE = new_rsa_key(), new_rsa_key()
PARAMS = connection_params(GRANTER, GRANTEE)
NOW = datetime.now(UTC)


def message(
    content_type: str, content: bytes, sender_id: str = "0sender"
) -> IncomingServiceMessage:
    return IncomingServiceMessage("parcel-1", sender_id, "0server", content_type, content)


ALICE, BOB = new_veraid_agent(ORG, "alice"), new_veraid_agent(ORG, "bob")


def signal_to_pair(
    decision: Decision,
    workflow: type[LegacyContactPairing | VeraidContactPairing],
    prefix: str,
    requester: str,
    target: str,
) -> object:
    """What ``decision`` signals to the pair's ``workflow``, once it is checked to do so."""
    assert isinstance(decision, SignalWithStart)
    ids = sorted([requester, target])
    assert decision.workflow == workflow.run
    assert decision.workflow_id == f"{prefix}:{ids[0]}:{ids[1]}"
    # The pair lingers an hour; the ingress remembers its parcels for the rest of the week.
    assert decision.start_input == PairingInput(
        veraid_ids=ids, request_ttl_seconds=90 * 86400, dedup_window_seconds=3600
    )
    # The name running pairs know their requests by: the method must keep it.
    assert decision.signal_name == "pairing_request"
    return decision.signal_input


def test_verified_contact_pairing_request_is_signalled_to_its_pair() -> None:
    bundle = ALICE.pairing_request(BOB.veraid_id.upper())

    decision = route(message(CONTACT_PAIRING_REQUEST, bundle, ALICE.endpoint_id), OPTIONS, NOW)

    signal = signal_to_pair(
        decision, VeraidContactPairing, "veraid-pairing", ALICE.veraid_id, BOB.veraid_id
    )
    # Verified at the edge: the signal carries the key the bundle vouches for.
    assert signal == PairingRequestReceived(
        parcel_id="parcel-1",
        server_endpoint_id="0server",
        requester_endpoint_id=ALICE.endpoint_id,
        requester_veraid_id=ALICE.veraid_id,
        target_veraid_id=BOB.veraid_id,
        requester_id_key_b64=base64.b64encode(spki(ALICE.endpoint_key)).decode(),
        signature_bundle_b64=base64.b64encode(bundle).decode(),
    )


def test_legacy_pairing_request_is_signalled_to_its_pair() -> None:
    alice, bob = new_agent("alice"), new_agent("bob")

    decision = route(
        message(PAIRING_REQUEST_TMP, alice.legacy_pairing_request(bob), alice.endpoint_id),
        OPTIONS,
        NOW,
    )

    signal = signal_to_pair(
        decision, LegacyContactPairing, "legacy-pairing", alice.veraid_id, bob.veraid_id
    )
    key_b64 = base64.b64encode(alice.id_key).decode()
    ids = alice.endpoint_id, alice.veraid_id, bob.veraid_id
    # Unsigned: no SignatureBundle to forward.
    assert signal == PairingRequestReceived("parcel-1", "0server", *ids, key_b64)


def test_verified_account_request_is_signalled_to_its_workflow() -> None:
    request, key = pss_request("maría", "es-ve")

    decision = route(message(ACCOUNT_REQUEST, request), OPTIONS, NOW)

    assert isinstance(decision, SignalWithStart)
    assert decision.workflow == AccountCreation.run
    assert decision.workflow_id.startswith("account-creation:0sender:")
    assert decision.start_input == AccountCreationInput()
    assert decision.signal_name == "account_request"  # as running workflows know it
    assert decision.signal_input == AccountRequestReceived(
        parcel_id="parcel-1",
        server_endpoint_id="0server",
        sender_endpoint_id="0sender",
        requested_user_name="maría",
        locale="es-ve",
        public_key_b64=base64.b64encode(pss_spki(key)).decode(),
    )


def test_verified_account_request_with_a_non_rsa_key_is_refused() -> None:
    # The signature is good, but the Authority could never issue a bundle for the key.
    key = ed25519.Ed25519PrivateKey.generate()
    request = build_request("maría", "es-ve", key_spki(key), key.sign)

    decision = route(message(ACCOUNT_REQUEST, request), OPTIONS, NOW)

    assert isinstance(decision, Ignore)
    assert decision.reason == (
        "Refused account creation request: its key cannot be a VeraId member key"
    )
    assert decision.log_fields == {
        "reason": "VeraId member keys are RSA; this one is Ed25519",
        "err": "UnusableMemberKey",
    }


REFUSED: dict[str, tuple[Callable[[], bytes], str, ContactPairingFailureReason]] = {
    "signed by the organisation bot": (
        lambda: ORG.bot_request(ALICE, BOB.veraid_id),
        BOB.veraid_id,
        ContactPairingFailureReason.INVALID_REQUESTER_VERAID,
    ),
    "target not a user id": (
        lambda: ALICE.pairing_request("example.com"),
        "example.com",
        ContactPairingFailureReason.INVALID_TARGET_VERAID,
    ),
    "requester as target": (
        lambda: ALICE.pairing_request(ALICE.veraid_id.title()),
        ALICE.veraid_id.title(),
        ContactPairingFailureReason.INVALID_TARGET_VERAID,
    ),
    "target user name over the limit": (
        lambda: ALICE.pairing_request("b" * 129 + "@example.com"),
        "b" * 129 + "@example.com",
        ContactPairingFailureReason.INVALID_TARGET_VERAID,
    ),
    "key of another endpoint": (
        lambda: ALICE.pairing_request(BOB.veraid_id, key_spki=spki(BOB.endpoint_key)),
        BOB.veraid_id,
        ContactPairingFailureReason.INVALID_REQUESTER_AWALA_KEY,
    ),
}


@pytest.mark.parametrize(("make_bundle", "target", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_verified_request_failing_a_check_starts_its_refusal(
    make_bundle: Callable[[], bytes], target: str, reason: ContactPairingFailureReason
) -> None:
    decision = route(
        message(CONTACT_PAIRING_REQUEST, make_bundle(), ALICE.endpoint_id), OPTIONS, NOW
    )

    assert isinstance(decision, StartOnce)
    assert decision.workflow == ContactPairingRefusal.run
    assert decision.workflow_id == f"contact-pairing-refusal:{ALICE.endpoint_id}:parcel-1"
    assert isinstance(decision.start_input, ContactPairingRefusalToSend)
    assert decision.start_input.reason == reason.name
    failure = base64.b64decode(decision.start_input.failure_b64)
    assert parse_contact_pairing_failure(failure) == (target, reason)


OTHER_ORG = make_org("other.example")
DROPPED: dict[str, Callable[[], bytes]] = {
    "not a bundle": lambda: b"anything",
    "plaintext not a request": lambda: ALICE.pairing_request("", plaintext=b"a,b,c"),
    "chain from an untrusted root": lambda: VeraidAgent(
        OTHER_ORG, "mallory", ALICE.endpoint_key
    ).pairing_request(BOB.veraid_id),
    "bundle cut short": lambda: ALICE.pairing_request(BOB.veraid_id)[:-1],
}


@pytest.mark.parametrize("make_bundle", DROPPED.values(), ids=DROPPED.keys())
def test_unverifiable_request_is_dropped_in_the_ingress(make_bundle: Callable[[], bytes]) -> None:
    decision = route(
        message(CONTACT_PAIRING_REQUEST, make_bundle(), ALICE.endpoint_id), OPTIONS, NOW
    )

    assert isinstance(decision, Ignore)
    assert decision.reason == "Refused unverifiable contact pairing request"
    assert decision.log_fields["reason"]


def test_request_verified_outside_its_validity_is_dropped() -> None:
    bundle = ALICE.pairing_request(BOB.veraid_id)

    decision = route(
        message(CONTACT_PAIRING_REQUEST, bundle, ALICE.endpoint_id),
        OPTIONS,
        ORG.period.end + timedelta(days=91),
    )

    assert isinstance(decision, Ignore)


@pytest.mark.parametrize(
    "content_type",
    [CONTACT_PAIRING_REQUEST, ACCOUNT_REQUEST, PAIRING_REQUEST_TMP, PAIRING_AUTH],
)
def test_content_over_its_cap_is_refused_unread(content_type: str) -> None:
    limit = MAX_CONTENT_LENGTHS[content_type]

    with pytest.raises(ContentTooLarge) as raised:
        route(message(content_type, b"\x30" * (limit + 1)), OPTIONS, NOW)

    assert raised.value.limit == limit


def test_content_at_its_cap_is_parsed() -> None:
    limit = MAX_CONTENT_LENGTHS[CONNECTION_PARAMS_REQUEST]

    decision = route(message(CONNECTION_PARAMS_REQUEST, b"a" * limit), OPTIONS, NOW)

    assert isinstance(decision, Ignore)  # read, and refused for what it says
    assert decision.reason == "Refused malformed connection params request"


@pytest.mark.parametrize("content_type", [PAIRING_AUTH, CONTACT_PAIRING_AUTHORISATION])
def test_authorisation_is_forwarded_with_the_type_received(content_type: str) -> None:
    decision = route(message(content_type, PARAMS, endpoint_id(GRANTER)), OPTIONS, NOW)

    assert isinstance(decision, StartOnce)
    assert decision.workflow_id == f"forward:{endpoint_id(GRANTER)}:parcel-1"
    assert decision.start_input == Forwarding(
        server_endpoint_id="0server",
        recipient_endpoint_id=endpoint_id(GRANTEE),
        content_type=content_type,
        content_b64=base64.b64encode(PARAMS).decode(),
    )


def test_legacy_authorisation_is_forwarded_as_a_completion() -> None:
    decision = route(message(PAIRING_AUTH_TMP, PARAMS, endpoint_id(GRANTER)), OPTIONS, NOW)

    assert isinstance(decision, StartOnce)
    assert isinstance(decision.start_input, Forwarding)
    assert decision.start_input.content_type == PAIRING_COMPLETION_TMP
    completion = base64.b64decode(decision.start_input.content_b64)
    assert completion == f"{endpoint_id(GRANTER)},".encode() + base64.b64encode(PARAMS)


@pytest.mark.parametrize("content_type", [PAIRING_AUTH, PAIRING_AUTH_TMP])
def test_authorisation_from_someone_else_is_ignored(content_type: str) -> None:
    decision = route(message(content_type, PARAMS, endpoint_id(GRANTEE)), OPTIONS, NOW)

    assert isinstance(decision, Ignore)
    assert decision.reason == "Refused connection params not issued by sender"
    assert decision.log_fields == {
        "messageSenderId": endpoint_id(GRANTEE),
        "granterId": endpoint_id(GRANTER),
    }


def test_malformed_authorisation_is_ignored_with_the_reason() -> None:
    decision = route(message(PAIRING_AUTH, b"\x30\x00", endpoint_id(GRANTER)), OPTIONS, NOW)

    assert isinstance(decision, Ignore)
    assert decision.reason == "Refused malformed connection params"
    assert decision.log_fields["reason"]
