"""VeraId contact pairing: the pair workflow, and the per-message workflow that feeds it.

Each ``contact-pairing.request`` message gets a short ``ContactPairingRequest`` workflow
(id from sender and parcel, so a redelivery cannot start a second one). Its first step, an
activity, verifies the VeraId SignatureBundle: that is heavy CPU work and the only source of
the ids, so it can happen neither in the ingress (which must answer the broker quickly and
must not let unverified ids choose a workflow) nor in workflow code (which is replayed).
The verified request is then signal-with-started into the pair's ``VeraidContactPairing``
workflow by a second activity: workflow code cannot signal-with-start another workflow, and
a plain external signal would fail when the pair workflow is not running yet.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.messages import (
        ContactPairingVerdict,
        IncomingPairingRequest,
        OutgoingMessage,
        PairingRequestReceived,
        PairingSignal,
    )
    from awala.service_messages import default_expiry
    from letro.content_types import CONTACT_PAIRING_FAILURE, CONTACT_PAIRING_REQUEST
    from workflows.pairing import (
        RETRY_FOREVER,
        PairingInput,
        PairingOutcome,
        PairWorkflow,
        event_id,
        pair_workflow_id,
    )

WORKFLOW_ID_PREFIX = "veraid-pairing"
REQUEST_WORKFLOW_ID_PREFIX = "contact-pairing-request"
REQUEST_WORKFLOW_NAME = "ContactPairingRequest"

# RSA and DNSSEC checks of one bundle take milliseconds; the margin covers a busy worker.
_VERIFY_TIMEOUT = timedelta(seconds=30)
_SHORT_TIMEOUT = timedelta(seconds=15)


def workflow_id_for(veraid_id_a: str, veraid_id_b: str) -> str:
    """The pair's workflow id; pass the ids in their matching form (``pairing_key``)."""
    return pair_workflow_id(WORKFLOW_ID_PREFIX, veraid_id_a, veraid_id_b)


def request_workflow_id(sender_id: str, parcel_id: str) -> str:
    # Parcel ids are chosen by the sending endpoint, so they are scoped to it.
    return f"{REQUEST_WORKFLOW_ID_PREFIX}:{sender_id}:{parcel_id}"


@workflow.defn(name="VeraidContactPairing")
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


@dataclass(frozen=True)
class ContactPairingRequestOutcome:
    outcome: str  # "dropped", "refused" or "forwarded"


@workflow.defn(name=REQUEST_WORKFLOW_NAME)
class ContactPairingRequestWorkflow:
    @workflow.run
    async def run(self, request: IncomingPairingRequest) -> ContactPairingRequestOutcome:
        verdict: ContactPairingVerdict = await workflow.execute_local_activity(
            "verify_contact_pairing_request",
            request,
            result_type=ContactPairingVerdict,
            start_to_close_timeout=_VERIFY_TIMEOUT,
            retry_policy=RETRY_FOREVER,
        )
        if verdict.failure_b64 is not None:
            now = workflow.now()
            await workflow.execute_local_activity(
                "emit_service_message",
                OutgoingMessage(
                    event_id=event_id("failure"),
                    sender_endpoint_id=request.server_endpoint_id,
                    recipient_endpoint_id=request.sender_endpoint_id,
                    content_type=CONTACT_PAIRING_FAILURE,
                    content_b64=verdict.failure_b64,
                    creation_time=now,
                    expiry_time=default_expiry(now),
                ),
                start_to_close_timeout=_SHORT_TIMEOUT,
                retry_policy=RETRY_FOREVER,
            )
            return ContactPairingRequestOutcome("refused")
        if verdict.requester_veraid_id is None or verdict.target_veraid_id is None:
            return ContactPairingRequestOutcome("dropped")  # the activity logged why
        ids = sorted((verdict.requester_veraid_id, verdict.target_veraid_id))
        await workflow.execute_local_activity(
            "signal_with_start_pairing",
            PairingSignal(
                workflow=VeraidContactPairing.__name__,
                workflow_id=workflow_id_for(*ids),
                veraid_ids=ids,
                request_ttl_seconds=request.request_ttl_seconds,
                request=PairingRequestReceived(
                    parcel_id=request.parcel_id,
                    server_endpoint_id=request.server_endpoint_id,
                    requester_endpoint_id=request.sender_endpoint_id,
                    requester_veraid_id=verdict.requester_veraid_id,
                    target_veraid_id=verdict.target_veraid_id,
                    requester_id_key_b64=verdict.requester_id_key_b64 or "",
                    signature_bundle_b64=request.content_b64,
                ),
            ),
            start_to_close_timeout=_SHORT_TIMEOUT,
            retry_policy=RETRY_FOREVER,
        )
        return ContactPairingRequestOutcome("forwarded")
