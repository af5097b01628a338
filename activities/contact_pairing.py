"""The activity of VeraId contact pairing: verifying a request."""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from temporalio import activity

import veraid
from activities.messages import ContactPairingVerdict, IncomingPairingRequest
from awala.private_endpoint_conn_params import InvalidPrivateEndpointConnParams, endpoint_id_of_key
from letro.contact_pairing import (
    LETRO_SERVICE_OID,
    ContactPairingFailureReason,
    MalformedContactPairingRequest,
    parse_contact_pairing_request,
    serialise_contact_pairing_failure,
)
from letro.errors import InvalidVeraidId
from letro.veraid_ids import pairing_key

logger = structlog.get_logger(__name__)

# A request stays pending up to 90 days, and so does its signature: the original accepts
# any bundle valid at some point of the last 90 days.
SIGNATURE_WINDOW = veraid.MAX_TTL_OVERRIDE


class ContactPairingVerifier:
    """Verifies contact pairing requests against the configured DNSSEC trust anchors.

    A synchronous activity, run on the worker's thread pool: verification is CPU work
    (RSA and DNSSEC) that would otherwise stall the worker's event loop. Each thread keeps
    its own VerificationCache, which is not thread-safe.
    """

    def __init__(self, trust_anchors: Sequence[veraid.TrustAnchor]) -> None:
        self._trust_anchors = tuple(trust_anchors)
        self._local = threading.local()

    def _cache(self) -> veraid.VerificationCache:
        cache: veraid.VerificationCache | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = veraid.VerificationCache()
        return cache

    @activity.defn(name="verify_contact_pairing_request")
    def verify(self, request: IncomingPairingRequest) -> ContactPairingVerdict:
        try:
            return self._verify(request)
        except Exception:
            # A bug, but one the same bytes would hit on every retry: drop the message
            # (loudly) rather than retry it forever.
            logger.exception(
                "Dropped contact pairing request after an unexpected error",
                peerId=request.sender_endpoint_id,
                parcelId=request.parcel_id,
            )
            return ContactPairingVerdict()

    def _verify(self, request: IncomingPairingRequest) -> ContactPairingVerdict:
        log = logger.bind(peerId=request.sender_endpoint_id, parcelId=request.parcel_id)
        now = datetime.now(UTC)
        try:
            verification = veraid.verify_signature_bundle(
                base64.b64decode(request.content_b64),
                LETRO_SERVICE_OID,
                veraid.DatePeriod(now - SIGNATURE_WINDOW, now),
                trust_anchors=self._trust_anchors,
                cache=self._cache(),
            )
        except veraid.VeraidError as error:
            log.info(
                "Refused invalid VeraId SignatureBundle for contact pairing request",
                err=f"{type(error).__name__}: {error}",
            )
            return ContactPairingVerdict()
        try:
            request_body = parse_contact_pairing_request(verification.plaintext)
        except MalformedContactPairingRequest as error:
            log.info("Refused malformed contact pairing request", err=str(error))
            return ContactPairingVerdict()

        target = request_body.target_veraid_id
        log = log.bind(requesterVeraidId=str(verification.member), targetVeraidId=target[:200])

        def refuse(reason: ContactPairingFailureReason, message: str) -> ContactPairingVerdict:
            log.info(message, reason=reason.name)
            failure = serialise_contact_pairing_failure(target, reason)
            return ContactPairingVerdict(failure_b64=base64.b64encode(failure).decode("ascii"))

        # The checks in the original server's order, so the same request earns the same reason.
        if verification.member.user is None:
            return refuse(
                ContactPairingFailureReason.INVALID_REQUESTER_VERAID,
                "Refused contact pairing request from a VeraId org bot",
            )
        try:
            endpoint_id = endpoint_id_of_key(request_body.requester_endpoint_key)
        except InvalidPrivateEndpointConnParams:
            return refuse(
                ContactPairingFailureReason.INVALID_REQUESTER_AWALA_KEY,
                "Refused invalid Awala id key for requester",
            )
        if endpoint_id != request.sender_endpoint_id:
            return refuse(
                ContactPairingFailureReason.INVALID_REQUESTER_AWALA_KEY,
                "Refused pairing request due to mismatching Awala endpoint key from sender",
            )
        try:
            target_key = pairing_key(target)
        except InvalidVeraidId:
            return refuse(
                ContactPairingFailureReason.INVALID_TARGET_VERAID,
                "Refused pairing request because the target is not a VeraId user id",
            )
        try:
            requester_key = pairing_key(str(verification.member))
        except InvalidVeraidId:
            # VeraId accepts some organisation names that Letro's id rules (those of the
            # original server) do not; such a requester could never be anyone's target.
            return refuse(
                ContactPairingFailureReason.INVALID_REQUESTER_VERAID,
                "Refused contact pairing request from a VeraId id Letro does not accept",
            )
        if requester_key == target_key:
            # A pair of one can never complete; say so instead of waiting 90 days.
            return refuse(
                ContactPairingFailureReason.INVALID_TARGET_VERAID,
                "Refused pairing request whose target is the requester",
            )
        return ContactPairingVerdict(
            requester_veraid_id=requester_key,
            target_veraid_id=target_key,
            requester_id_key_b64=base64.b64encode(request_body.requester_endpoint_key).decode(),
        )
