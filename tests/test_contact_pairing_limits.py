"""``veraid``'s chain limits against a Letro contact pairing request with a bloated chain.

The bundle is built as the ingress end-to-end tests build theirs: signed by a
``VeraidOrg`` of ``infra.agents``, over a real ``ContactPairingRequest``.
"""

from __future__ import annotations

import pytest

import veraid
from infra.agents import make_org, new_rsa_key, spki
from letro.contact_pairing import LETRO_SERVICE_OID, serialise_contact_pairing_request
from veraid_helpers import CPU_BOUND_SECONDS, bloated_signature_bundle, cpu_seconds


def test_a_bloated_contact_pairing_request_fits_the_body_cap_and_is_refused() -> None:
    org = make_org()
    plaintext = serialise_contact_pairing_request(spki(new_rsa_key()), "bob@applepie.rocks")
    bundle = bloated_signature_bundle(org, plaintext=plaintext, service_oid=LETRO_SERVICE_OID)
    assert len(bundle) <= 30 * 1024
    with pytest.raises(veraid.ChainLimitError, match="bytes"):
        veraid.read_signature_bundle(bundle)  # the ingress refuses to route it

    def verify_bloated() -> None:
        with pytest.raises(veraid.ChainLimitError):
            veraid.verify_signature_bundle(
                bundle, LETRO_SERVICE_OID, org.period, trust_anchors=[org.chain.trust_anchor]
            )

    assert cpu_seconds(verify_bloated) < CPU_BOUND_SECONDS
