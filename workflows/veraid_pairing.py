"""VeraId contact pairing: the pair workflow, and the short workflow that sends a refusal.

The ingress verifies each request's SignatureBundle before anything durable happens
(``letro.contact_pairing.check_contact_pairing_request``), so only verified requests reach
Temporal. A request that may be matched is signalled into its pair's
``VeraidContactPairing`` workflow, as legacy requests are. One that verifies but fails a
check the protocol answers gets its ``ContactPairingFailure`` from a short
``ContactPairingRefusal`` workflow of its own (id from sender and parcel, so a redelivery
cannot send a second one: the ingress's record of taken parcels drops it, see
``ingress.parcel_ledger``). One that does not verify never leaves the ingress.
"""

from __future__ import annotations

import base64

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contract.pairing import (
        ContactPairingRefusalOutcome,
        ContactPairingRefusalToSend,
        PairingInput,
        PairingOutcome,
        PairingRequestReceived,
    )
    from letro.content_types import CONTACT_PAIRING_FAILURE, CONTACT_PAIRING_REQUEST
    from metrics import PAIRING_FAILURE_REPLIES, count
    from workflows import visibility
    from workflows.pairing import SANDBOXED, PairWorkflow, pair_workflow_id
    from workflows.replies import emit, event_id, outgoing_message

WORKFLOW_ID_PREFIX = "veraid-pairing"
REFUSAL_WORKFLOW_ID_PREFIX = "contact-pairing-refusal"


def workflow_id_for(veraid_id_a: str, veraid_id_b: str) -> str:
    """The pair's workflow id; pass the ids in their matching form (``pairing_key``)."""
    return pair_workflow_id(WORKFLOW_ID_PREFIX, veraid_id_a, veraid_id_b)


def refusal_workflow_id(sender_id: str, parcel_id: str) -> str:
    # Parcel ids are chosen by the sending endpoint, so they are scoped to it.
    return f"{REFUSAL_WORKFLOW_ID_PREFIX}:{sender_id}:{parcel_id}"


@workflow.defn(name="VeraidContactPairing", sandboxed=SANDBOXED)
class VeraidContactPairing(PairWorkflow):
    KIND = "veraid"

    @workflow.run
    async def run(self, state: PairingInput) -> PairingOutcome:
        return await self._run(state)

    def _match_message(
        self, recipient: PairingRequestReceived, contact: PairingRequestReceived
    ) -> tuple[str, bytes]:
        # Each side gets the other's bundle untouched: the agent verifies it itself.
        return CONTACT_PAIRING_REQUEST, base64.b64decode(contact.signature_bundle_b64)


@workflow.defn(name="ContactPairingRefusal")
class ContactPairingRefusal:
    """Send the ``ContactPairingFailure`` a verified request earned, until it is delivered."""

    @workflow.run
    async def run(self, refusal: ContactPairingRefusalToSend) -> ContactPairingRefusalOutcome:
        delivered = await emit(
            outgoing_message(
                event_id=event_id("failure"),
                sender_endpoint_id=refusal.server_endpoint_id,
                recipient_endpoint_id=refusal.sender_endpoint_id,
                content_type=CONTACT_PAIRING_FAILURE,
                content_b64=refusal.failure_b64,
            )
        )
        if delivered:
            workflow.logger.info(
                "Contact pairing failure sent",
                extra={"peerId": refusal.sender_endpoint_id, "reason": refusal.reason},
            )
        count(workflow.metric_meter(), PAIRING_FAILURE_REPLIES, reason=refusal.reason)
        visibility.record(outcome=refusal.reason)
        return ContactPairingRefusalOutcome(refusal.reason)
