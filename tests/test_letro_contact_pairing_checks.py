"""``check_contact_pairing_request``: what a signed request claims and the verdict agree.

The bundles are real SignatureBundles over a mock DNSSEC chain; the checks are pure, so the
clock and the trust anchor are the test's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

import veraid
from infra.agents import VeraidAgent, make_org, new_rsa_key, spki
from letro.contact_pairing import (
    PairingDrop,
    PairingRefusal,
    VerifiedPairingRequest,
    check_contact_pairing_request,
    parse_contact_pairing_failure,
    parse_contact_pairing_request,
)
from letro.errors import InvalidVeraidId
from letro.veraid_ids import pairing_key

ORG = make_org()
NOW = datetime.now(UTC)
OWN_KEY, OTHER_KEY = new_rsa_key(), new_rsa_key()

user_names = st.text(
    st.characters(exclude_characters="@\t\r\n", exclude_categories=["Cs"]),
    min_size=1,
    max_size=12,
)
targets = st.one_of(
    st.builds(
        lambda name, domain: f"{name}@{domain}",
        user_names,
        st.sampled_from(
            [ORG.domain, ORG.domain.upper(), "tickety.boo", "bücher.example", "x_y.example"]
        ),
    ),
    st.sampled_from(["tickety.boo", "", "a@b@c.example", "bob@tickety.boo."]),
    st.text(max_size=20),
)


def _claim(bundle: bytes) -> tuple[veraid.Member, str]:
    claimed = veraid.read_signature_bundle(bundle)
    assert claimed.plaintext is not None
    return claimed.member, parse_contact_pairing_request(claimed.plaintext).target_veraid_id


@settings(max_examples=40, deadline=None)
@given(
    user_name=user_names,
    target=targets,
    as_bot=st.booleans(),
    sender_owns_key=st.booleans(),
)
def test_the_verdict_agrees_with_the_claim(
    user_name: str, target: str, as_bot: bool, sender_owns_key: bool
) -> None:
    agent = VeraidAgent(ORG, user_name, OWN_KEY)
    bundle = ORG.bot_request(agent, target) if as_bot else agent.pairing_request(target)
    sender = agent.endpoint_id if sender_owns_key else VeraidAgent(ORG, "x", OTHER_KEY).endpoint_id
    member, claimed_target = _claim(bundle)

    verdict = check_contact_pairing_request(
        bundle, sender, NOW, trust_anchors=[ORG.chain.trust_anchor]
    )

    assert not isinstance(verdict, PairingDrop)  # every bundle here is genuinely signed
    if isinstance(verdict, VerifiedPairingRequest):
        assert verdict.requester_veraid_id == pairing_key(str(member))
        assert verdict.target_veraid_id == pairing_key(claimed_target)
        assert verdict.requester_endpoint_key == spki(OWN_KEY)
        assert verdict.signature_bundle == bundle
        assert sender_owns_key
        assert not as_bot
    else:
        assert isinstance(verdict, PairingRefusal)
        # The failure names the target as the request did, byte for byte.
        assert parse_contact_pairing_failure(verdict.failure_message) == (
            claimed_target,
            verdict.reason,
        )
        assert as_bot or not sender_owns_key or _not_a_pair(str(member), claimed_target)


def _not_a_pair(requester: str, target: str) -> bool:
    try:
        return pairing_key(requester) == pairing_key(target)
    except InvalidVeraidId:
        return True


def test_a_bundle_signed_under_an_untrusted_root_is_dropped() -> None:
    stranger = VeraidAgent(make_org(ORG.domain), "mallory", OWN_KEY)
    verdict = check_contact_pairing_request(
        stranger.pairing_request("bob@tickety.boo"),
        stranger.endpoint_id,
        NOW,
        trust_anchors=[ORG.chain.trust_anchor],
    )
    assert isinstance(verdict, PairingDrop)
    assert "DnssecError" in verdict.explanation
