"""The verification activity's decisions, called directly (the stack tests cover the rest)."""

from __future__ import annotations

import base64

from activities.contact_pairing import ContactPairingVerifier
from activities.messages import IncomingPairingRequest
from letro.contact_pairing import ContactPairingFailureReason, parse_contact_pairing_failure
from tests.pairing_helpers import VeraidAgent, make_org, new_rsa_key


def test_requester_from_an_organisation_letro_refuses_gets_a_failure() -> None:
    # A valid DNS name and VeraId organisation, but not a domain by Letro's (the original's)
    # rules: "_" is not allowed in the label before the TLD.
    org = make_org("under_score.example")
    agent = VeraidAgent(org, "alice", new_rsa_key())
    verdict = ContactPairingVerifier([org.chain.trust_anchor]).verify(
        IncomingPairingRequest(
            parcel_id="p",
            sender_endpoint_id=agent.endpoint_id,
            server_endpoint_id="0server",
            content_b64=base64.b64encode(agent.pairing_request("bob@example.com")).decode(),
            request_ttl_seconds=60,
        )
    )
    assert verdict.requester_veraid_id is None
    assert verdict.failure_b64 is not None
    assert parse_contact_pairing_failure(base64.b64decode(verdict.failure_b64)) == (
        "bob@example.com",
        ContactPairingFailureReason.INVALID_REQUESTER_VERAID,
    )
