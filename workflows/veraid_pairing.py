"""VeraId contact pairing: the pair workflow, and the per-message workflow for the rest.

The ingress reads who a request *claims* to be from and for (``veraid.read_signature_bundle``,
no verification) and signals it straight into that pair's ``VeraidContactPairing``
workflow, as legacy requests are. The pair workflow verifies each request in a local
activity before it is stored or matched, so an unverified claim can at most wake a pair
workflow, never pair anyone: a forged request fails verification there and is dropped,
and a signed one whose checks fail gets its ``ContactPairingFailure`` from there.

A request that names no pair (unreadable, signed by a bot, a target that is not a user
id, a requester asking for themselves) goes to a short ``ContactPairingRequest`` workflow
of its own (id from sender and parcel, so a redelivery cannot start a second one), which
verifies it and answers with the failure the checks call for, or drops it.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, replace
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.messages import (
        ContactPairingVerdict,
        IncomingPairingRequest,
        PairingRequestReceived,
    )
    from letro.content_types import CONTACT_PAIRING_FAILURE, CONTACT_PAIRING_REQUEST
    from workflows.pairing import (
        SANDBOXED,
        PairingInput,
        PairingOutcome,
        PairWorkflow,
        pair_workflow_id,
    )
    from workflows.replies import RETRY_FOREVER, emit, event_id, outgoing_message

WORKFLOW_ID_PREFIX = "veraid-pairing"
REQUEST_WORKFLOW_ID_PREFIX = "contact-pairing-request"
REQUEST_WORKFLOW_NAME = "ContactPairingRequest"

# RSA and DNSSEC checks of one bundle take milliseconds; the margin covers a busy worker.
_VERIFY_TIMEOUT = timedelta(seconds=30)


def workflow_id_for(veraid_id_a: str, veraid_id_b: str) -> str:
    """The pair's workflow id; pass the ids in their matching form (``pairing_key``)."""
    return pair_workflow_id(WORKFLOW_ID_PREFIX, veraid_id_a, veraid_id_b)


def request_workflow_id(sender_id: str, parcel_id: str) -> str:
    # Parcel ids are chosen by the sending endpoint, so they are scoped to it.
    return f"{REQUEST_WORKFLOW_ID_PREFIX}:{sender_id}:{parcel_id}"


async def _verify(request: IncomingPairingRequest) -> ContactPairingVerdict:
    verdict: ContactPairingVerdict = await workflow.execute_local_activity(
        "verify_contact_pairing_request",
        request,
        result_type=ContactPairingVerdict,
        start_to_close_timeout=_VERIFY_TIMEOUT,
        retry_policy=RETRY_FOREVER,
    )
    return verdict


async def _send_failure(request: IncomingPairingRequest, failure_b64: str) -> None:
    await emit(
        outgoing_message(
            # One failure per parcel, whichever workflow refuses it.
            event_id=event_id(f"failure-{request.sender_endpoint_id}/{request.parcel_id}"),
            sender_endpoint_id=request.server_endpoint_id,
            recipient_endpoint_id=request.sender_endpoint_id,
            content_type=CONTACT_PAIRING_FAILURE,
            content_b64=failure_b64,
        )
    )


@workflow.defn(name="VeraidContactPairing", sandboxed=SANDBOXED)
class VeraidContactPairing(PairWorkflow):
    KIND = "veraid"

    @workflow.run
    async def run(self, state: PairingInput) -> PairingOutcome:
        return await self._run(state)

    async def _admit(self, requests: list[PairingRequestReceived]) -> list[PairingRequestReceived]:
        incoming = [
            IncomingPairingRequest(
                parcel_id=request.parcel_id,
                sender_endpoint_id=request.requester_endpoint_id,
                server_endpoint_id=request.server_endpoint_id,
                content_b64=request.signature_bundle_b64,
                request_ttl_seconds=self._state.request_ttl_seconds,
            )
            for request in requests
        ]
        verdicts = await asyncio.gather(*(_verify(item) for item in incoming))
        refusals = []
        admitted = []
        for request, item, verdict in zip(requests, incoming, verdicts, strict=True):
            if verdict.failure_b64 is not None:
                refusals.append(_send_failure(item, verdict.failure_b64))
            elif (verdict.requester_veraid_id, verdict.target_veraid_id) == (
                request.requester_veraid_id,
                request.target_veraid_id,
            ):
                admitted.append(
                    replace(request, requester_id_key_b64=verdict.requester_id_key_b64 or "")
                )
            elif verdict.requester_veraid_id is not None:
                # Verification vouches for other ids than the ingress read: a bug, since
                # both come from the same bytes. Dropping is safe; matching is not.
                workflow.logger.error(
                    "Dropped contact pairing request whose verified ids differ from its route",
                    extra={"parcelId": request.parcel_id, "peerId": request.requester_endpoint_id},
                )
            # Otherwise it did not verify; the activity logged why.
        await asyncio.gather(*refusals)
        return admitted

    def _match_message(
        self, recipient: PairingRequestReceived, contact: PairingRequestReceived
    ) -> tuple[str, bytes]:
        # Each side gets the other's bundle untouched: the agent verifies it itself.
        return CONTACT_PAIRING_REQUEST, base64.b64decode(contact.signature_bundle_b64)


@dataclass(frozen=True)
class ContactPairingRequestOutcome:
    outcome: str  # "dropped" or "refused"


@workflow.defn(name=REQUEST_WORKFLOW_NAME)
class ContactPairingRequestWorkflow:
    """A request that names no pair: verify it, then refuse it or drop it."""

    @workflow.run
    async def run(self, request: IncomingPairingRequest) -> ContactPairingRequestOutcome:
        verdict = await _verify(request)
        if verdict.failure_b64 is not None:
            await _send_failure(request, verdict.failure_b64)
            return ContactPairingRequestOutcome("refused")
        if verdict.requester_veraid_id is None:
            return ContactPairingRequestOutcome("dropped")  # the activity logged why
        # The ingress found no pair in bytes that verify as a valid request: the routing
        # and the checks disagree. Fail visibly (the request stays in this history)
        # rather than pair on a path nothing tests.
        raise ApplicationError(
            "A valid contact pairing request was routed as naming no pair",
            type="RoutingMismatch",
            non_retryable=True,
        )
