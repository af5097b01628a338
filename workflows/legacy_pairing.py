"""Legacy (CSV) contact pairing: the pair workflow of ``workflows.pairing``, with CSV matches.

Ids are compared exactly, as the original server did: this protocol is unsigned and kept
only for old clients, so its behaviour is frozen.
"""

from __future__ import annotations

import base64

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contract.pairing import PairingInput, PairingOutcome, PairingRequestReceived
    from letro.content_types import PAIRING_MATCH_TMP
    from letro.legacy_pairing import serialise_pairing_match
    from workflows.pairing import SANDBOXED, PairWorkflow, pair_workflow_id

WORKFLOW_ID_PREFIX = "legacy-pairing"


def workflow_id_for(veraid_id_a: str, veraid_id_b: str) -> str:
    return pair_workflow_id(WORKFLOW_ID_PREFIX, veraid_id_a, veraid_id_b)


@workflow.defn(name="LegacyContactPairing", sandboxed=SANDBOXED)
class LegacyContactPairing(PairWorkflow):
    KIND = "legacy"

    @workflow.run
    async def run(self, state: PairingInput) -> PairingOutcome:
        return await self._run(state)

    def _match_message(
        self, recipient: PairingRequestReceived, contact: PairingRequestReceived
    ) -> tuple[str, bytes]:
        return PAIRING_MATCH_TMP, serialise_pairing_match(
            own_veraid_id=recipient.requester_veraid_id,
            contact_veraid_id=contact.requester_veraid_id,
            contact_endpoint_id=contact.requester_endpoint_id,
            contact_id_key=base64.b64decode(contact.requester_id_key_b64),
        )
