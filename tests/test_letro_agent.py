"""``infra.agents.LetroAgent``: the app's side of account creation, pairing and authorisation.

The replies are made here as the server makes them (an organisation of ``make_org`` stands
for the Authority), so each check of the agent is seen accepting the right reply and
refusing a wrong one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import veraid
from awala.private_endpoint_conn_params import UnprovenGranter
from infra.agents import (
    Account,
    AgentError,
    LetroAgent,
    VeraidOrg,
    connection_params,
    make_org,
    new_rsa_key,
    pss_spki,
)
from letro.account_messages import (
    parse_account_request,
    serialise_account_creation,
    verify_account_request,
)
from letro.contact_pairing import VerifiedPairingRequest, check_contact_pairing_request

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def org() -> VeraidOrg:
    return make_org("applepie.rocks")


@pytest.fixture(scope="module")
def alice() -> LetroAgent:
    return LetroAgent.new("alice", "en-us")


@pytest.fixture(scope="module")
def bob() -> LetroAgent:
    return LetroAgent.new("bob", "en-us")


def _bundle(org: VeraidOrg, user_name: str, agent: LetroAgent) -> bytes:
    certificate = veraid.issue_member_certificate(
        user_name,
        agent.account_key.public_key(),
        org.certificate,
        org.key,
        org.period.start,
        org.period.end,
    )
    return veraid.serialise_member_id_bundle(org.chain.responses, org.certificate, certificate)


def _account(org: VeraidOrg, agent: LetroAgent) -> Account:
    user_id = f"{agent.nickname}@{org.domain}"
    return Account(user_id, _bundle(org, agent.nickname, agent))


def _anchors(org: VeraidOrg) -> list[veraid.TrustAnchor]:
    return [org.chain.trust_anchor]


def test_account_request_is_signed_with_the_account_key(alice: LetroAgent) -> None:
    request = parse_account_request(alice.account_request())
    verify_account_request(request)  # raises if the signature is not the key's
    assert (request.user_name, request.locale) == ("alice", "en-us")
    assert request.public_key_der == pss_spki(alice.account_key)  # RSA-PSS, as Android's


def test_account_creation_reply_is_accepted(org: VeraidOrg, alice: LetroAgent) -> None:
    bundle = _bundle(org, "alice-12345", alice)
    reply = serialise_account_creation("alice", "en-us", "alice-12345@applepie.rocks", bundle)
    account = alice.read_account_creation(reply, _anchors(org), NOW)
    assert account == Account("alice-12345@applepie.rocks", bundle)


def test_account_for_another_key_is_refused(
    org: VeraidOrg, alice: LetroAgent, bob: LetroAgent
) -> None:
    reply = serialise_account_creation(
        "alice", "en-us", "alice@applepie.rocks", _bundle(org, "alice", bob)
    )
    with pytest.raises(AgentError, match="another key"):
        alice.read_account_creation(reply, _anchors(org), NOW)


def test_account_id_other_than_the_bundles_is_refused(org: VeraidOrg, alice: LetroAgent) -> None:
    reply = serialise_account_creation(
        "alice", "en-us", "mallory@applepie.rocks", _bundle(org, "alice", alice)
    )
    with pytest.raises(AgentError, match=r"certifies alice@applepie\.rocks, not mallory"):
        alice.read_account_creation(reply, _anchors(org), NOW)


def test_account_for_another_request_is_refused(org: VeraidOrg, alice: LetroAgent) -> None:
    reply = serialise_account_creation(
        "bob", "en-us", "alice@applepie.rocks", _bundle(org, "alice", alice)
    )
    with pytest.raises(AgentError, match="another request"):
        alice.read_account_creation(reply, _anchors(org), NOW)


def test_account_under_an_untrusted_root_is_refused(org: VeraidOrg, alice: LetroAgent) -> None:
    reply = serialise_account_creation(
        "alice", "en-us", "alice@applepie.rocks", _bundle(org, "alice", alice)
    )
    with pytest.raises(veraid.DnssecError):
        alice.read_account_creation(reply, veraid.IANA_TRUST_ANCHORS, NOW)


def test_pairing_request_is_what_the_server_accepts(org: VeraidOrg, alice: LetroAgent) -> None:
    request = alice.pairing_request(_account(org, alice), "bob@applepie.rocks", NOW)
    verdict = check_contact_pairing_request(
        request, alice.endpoint_id, NOW, trust_anchors=_anchors(org)
    )
    assert isinstance(verdict, VerifiedPairingRequest)
    assert (verdict.requester_veraid_id, verdict.target_veraid_id) == (
        "alice@applepie.rocks",
        "bob@applepie.rocks",
    )


def test_match_gives_the_contacts_endpoint(
    org: VeraidOrg, alice: LetroAgent, bob: LetroAgent
) -> None:
    alices, bobs = _account(org, alice), _account(org, bob)
    match = bob.pairing_request(bobs, "Alice@AppLePie.rocks", NOW)  # ids fold, as the server's
    contact = alice.read_pairing_match(match, alices, bobs.user_id, _anchors(org), NOW)
    assert (contact.veraid_id, contact.endpoint_id) == (bobs.user_id, bob.endpoint_id)


def test_match_signed_by_someone_else_is_refused(
    org: VeraidOrg, alice: LetroAgent, bob: LetroAgent
) -> None:
    mallory = LetroAgent("mallory", "en-us", bob.endpoint_key, bob.account_key)
    match = mallory.pairing_request(_account(org, mallory), "alice@applepie.rocks", NOW)
    with pytest.raises(AgentError, match=r"signed by mallory@applepie\.rocks"):
        alice.read_pairing_match(
            match, _account(org, alice), "bob@applepie.rocks", _anchors(org), NOW
        )


def test_match_for_someone_else_is_refused(
    org: VeraidOrg, alice: LetroAgent, bob: LetroAgent
) -> None:
    match = bob.pairing_request(_account(org, bob), "carol@applepie.rocks", NOW)
    with pytest.raises(AgentError, match=r"request for carol@applepie\.rocks"):
        alice.read_pairing_match(
            match, _account(org, alice), "bob@applepie.rocks", _anchors(org), NOW
        )


def test_authorisations_are_exchanged(org: VeraidOrg, alice: LetroAgent, bob: LetroAgent) -> None:
    alices, bobs = _account(org, alice), _account(org, bob)
    bob_as_contact = alice.read_pairing_match(
        bob.pairing_request(bobs, alices.user_id, NOW), alices, bobs.user_id, _anchors(org), NOW
    )
    alice_as_contact = bob.read_pairing_match(
        alice.pairing_request(alices, bobs.user_id, NOW), bobs, alices.user_id, _anchors(org), NOW
    )
    # alice's authorisation is for bob; bob reads it as coming from alice, to him.
    routing = bob.read_authorisation(alice.authorisation(bob_as_contact), alice_as_contact)
    assert (routing.granter_id, routing.grantee_id) == (alice.endpoint_id, bob.endpoint_id)


def test_authorisation_from_another_granter_or_to_another_grantee_is_refused(
    org: VeraidOrg, alice: LetroAgent, bob: LetroAgent
) -> None:
    alices, bobs = _account(org, alice), _account(org, bob)
    alice_as_contact = bob.read_pairing_match(
        alice.pairing_request(alices, bobs.user_id, NOW), bobs, alices.user_id, _anchors(org), NOW
    )
    stranger = new_rsa_key()
    with pytest.raises(AgentError, match="granted by"):
        bob.read_authorisation(connection_params(stranger, bob.endpoint_key), alice_as_contact)
    with pytest.raises(AgentError, match="granted to"):
        bob.read_authorisation(connection_params(alice.endpoint_key, stranger), alice_as_contact)
    forged = connection_params(alice.endpoint_key, bob.endpoint_key, signer=stranger)
    with pytest.raises(UnprovenGranter):
        bob.read_authorisation(forged, alice_as_contact)
