"""Contact pairing: one workflow per unordered pair of VeraId ids (shared by both protocols).

Both requests of a pair are signalled (with signal-with-start) to the same workflow, so
they meet in one place whatever their order or timing: a race can neither lose nor
duplicate a match. The workflow mirrors its pending request in MongoDB, sends each side
the other's details once both have asked, and forgets a request 90 days after it was
first received.

MongoDB is read back too: a fresh run's first store returns what the collection holds for
the pair (in the same local activity, so a pair costs no extra step), and a stored
counterpart, written by the original server or by a run Temporal terminated, matches as if
it had been signalled, expiring 90 days after its own creation date.

Every parcel taken is remembered, by a digest and the time it was taken, while the workflow
runs; it lingers ``PAIR_LINGER`` after its last request (or the dedup window, if shorter)
and then completes, so the matched requests' keys and bundles leave Temporal with that run's
history, at the namespace's retention. A redelivery after that, within the dedup window, is
dropped by the ingress (``ingress.parcel_ledger``) before it reaches Temporal.
"""

import asyncio
import base64
from collections.abc import Sequence
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import MetricCounter

with workflow.unsafe.imports_passed_through():
    from activities.pairing_match import MatchDelivery
    from activities.pairing_store import PairingRequestStore
    from contract.messages import OutgoingMessage, parcel_digest
    from contract.pairing import (
        MatchToDeliver,
        PairingInput,
        PairingOutcome,
        PairingRequestReceived,
        PairingRequestsToDelete,
        PairingStatus,
        PendingPairingRequest,
        StoredPair,
        TakenParcel,
        WaitingRequest,
    )
    from metrics import (
        PAIRING_EXPIRATIONS,
        PAIRING_MATCHES,
        PAIRING_REDELIVERIES,
        PAIRING_REQUESTS,
        Counter,
    )
    from workflows import visibility
    from workflows.replies import RETRY_FOREVER, emit, event_id, outgoing_message

# The pair workflows (every pairing request is a signal to one) run outside the workflow
# sandbox. Its cost is per payload, not per workflow: SDK 1.35 visits each payload of each
# activation and completion with a call into the sandbox that compiles and runs a small
# code string. Profiled under load (py-spy), that was a fifth of the worker's CPU, and
# leaving the sandbox cut the worker's CPU per VeraId pair from 30 to 24 ms. This module
# and its subclasses touch no clock, randomness or I/O except through ``workflow``, and
# the replay tests run recorded histories through them. The other workflows keep the
# sandbox: they see one message each, where its cost does not matter.
SANDBOXED = False
# Parcels remembered for deduplication are pruned by time (the dedup window); this cap only
# bounds what an abusive sender can make a pair carry (about 80 bytes each). A genuine pair
# sends a handful of parcels a week; when the cap bites, the oldest go, with a warning.
MAX_REMEMBERED_PARCELS = 1_000
# Patch (see README, "Changing a workflow") for two changes released together: a fresh
# run's first store reads back the stored requests, and a match is one local activity, not
# three. One id, not one per change: core records each patch id a run meets as a marker and
# an upsert of TemporalChangeVersion, in every new run. The SDK remembers the answer for the
# run, so a run that started before the release (no marker) keeps the old behaviour at
# every point.
PAIRS_2026_12 = "pair-read-back-match-in-one-step"

# All three activities are quick and idempotent, so they run as local activities: a
# round trip to the Temporal server per step would halve the pairing rate. MongoDB failures
# are retried without a deadline (RETRY_FOREVER), so a request that was accepted is never
# dropped; a match that cannot be delivered is kept for an operator (workflows.replies).
_STORE_TIMEOUT = timedelta(seconds=10)
# One deletion and two concurrent emissions, each bounded on its own.
_MATCH_TIMEOUT = timedelta(seconds=30)


def pair_workflow_id(prefix: str, veraid_id_a: str, veraid_id_b: str) -> str:
    """The id of the pair's workflow, the same whichever side asks first.

    VeraId domain names cannot contain ':', so the id is unambiguous and readable. Each
    protocol has its own prefix, so its requests never meet the other protocol's.
    """
    first, second = sorted((veraid_id_a, veraid_id_b))
    return f"{prefix}:{first}:{second}"


class PairWorkflow:
    """What both pairing protocols share; subclasses say how a match is worded.

    Temporal requires ``@workflow.run`` on the registered class itself, so each subclass
    declares ``run`` and calls :meth:`_run`.
    """

    KIND: str = ""  # the stored requests' discriminator, see activities.pairing_store

    def __init__(self) -> None:
        self._inbox: list[PairingRequestReceived] = []
        self._pending: dict[str, WaitingRequest] = {}
        self._state = PairingInput(veraid_ids=[], request_ttl_seconds=0)
        self._redeliveries_ignored = 0
        self._requests_handled = 0
        self._instruments: dict[str, MetricCounter] = {}
        self._taken: dict[str, datetime] = {}  # digest: when taken, oldest first
        self._unread = False  # MongoDB not read back yet in this run

    # Named after its signal: the SDK names the signal after the method, and the ingress
    # reads the name from the method it signals with. Renaming it would strand the requests
    # of running pairs (tests/test_routing.py pins the name).
    @workflow.signal
    def pairing_request(self, request: PairingRequestReceived) -> None:
        self._inbox.append(request)

    @workflow.query(name="status")
    def status(self) -> PairingStatus:
        return PairingStatus(
            pending_requesters=sorted(self._pending),
            matches=self._state.matches,
            expirations=self._state.expirations,
            redeliveries_ignored=self._redeliveries_ignored,
            requests_handled=self._requests_handled,
            remembered_parcels=len(self._taken),
        )

    def _match_message(
        self, recipient: PairingRequestReceived, contact: PairingRequestReceived
    ) -> tuple[str, bytes]:
        """The content type and content telling ``recipient`` about ``contact``."""
        raise NotImplementedError

    async def _run(self, state: PairingInput) -> PairingOutcome:
        self._state = state
        self._requests_handled = state.requests_handled
        self._redeliveries_ignored = state.redeliveries_ignored
        pending = self._pending = {item.request.requester_veraid_id: item for item in state.pending}
        # Carried requests go first: they were signalled before anything this run received.
        self._inbox[:0] = state.inbox
        state.inbox = []
        self._taken = _carried_parcels(state, workflow.now())
        ttl = timedelta(seconds=state.request_ttl_seconds)
        window = timedelta(seconds=state.dedup_window_seconds)
        # Only a fresh start can find in MongoDB what this workflow does not know: a
        # continued run was handed everything its predecessor stored.
        self._unread = workflow.info().continued_run_id is None
        idle_since = workflow.now()

        while True:
            if pending:
                deadline = min(item.first_received for item in pending.values()) + ttl
            else:
                # Every parcel taken so far was taken by then (pruned on their own times).
                deadline = idle_since + window
            timeout = max(deadline - workflow.now(), timedelta(0))
            try:
                await workflow.wait_condition(lambda: bool(self._inbox), timeout=timeout)
            except TimeoutError:
                if self._inbox:
                    continue  # a request came with the timer: take it before anything else
                if not pending:
                    return PairingOutcome(state.matches, state.expirations)
                await self._expire(state.veraid_ids, list(pending.values()))
                state.expirations += len(pending)
                self._count(PAIRING_EXPIRATIONS, len(pending))
                pending.clear()
                visibility.record(outcome="expired", pending=False)
                idle_since = workflow.now()
                continue

            new = self._take_new_requests(window)
            self._requests_handled += len(new)
            self._count(PAIRING_REQUESTS, len(new))
            updated = self._fold(new, pending)
            if updated and len(pending) < 2:
                await self._store(updated, pending, ttl)
                if len(pending) < 2:
                    visibility.record(pending=True)  # a command only when it was not already
            if len(pending) == 2:
                await self._deliver_match(list(pending.values()), state.matches)
                state.matches += 1
                self._count(PAIRING_MATCHES)
                pending.clear()
                visibility.record(outcome="matched", pending=False)
            idle_since = workflow.now()

            if self._history_is_long():
                self._continue_as_new(state)

    def _continue_as_new(self, state: PairingInput) -> None:
        # Whatever arrived while this batch was handled goes along unread; nothing awaits
        # between here and the call, so no signal can slip in unprocessed.
        state.pending = list(self._pending.values())
        state.requests_handled = self._requests_handled
        state.redeliveries_ignored = self._redeliveries_ignored
        state.taken_parcels = [TakenParcel(digest, at) for digest, at in self._taken.items()]
        state.seen_parcels = []
        state.inbox = list(self._inbox)
        workflow.continue_as_new(state)

    def _count(self, counter: Counter, value: int = 1) -> None:
        # Made once per workflow instance: making an instrument is a call into the SDK's
        # core, and this runs for every request.
        instrument = self._instruments.get(counter.name)
        if instrument is None:
            instrument = self._instruments[counter.name] = counter.on(workflow.metric_meter())
        if value:
            instrument.add(value, {"protocol": self.KIND})

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._state.max_history_events
        )

    def _take_new_requests(self, window: timedelta) -> list[PairingRequestReceived]:
        """Empty the inbox; return the requests whose parcels this pair has not taken yet."""
        now = workflow.now()
        taken = self._taken
        for digest in [digest for digest, at in taken.items() if at + window <= now]:
            del taken[digest]  # out of the window: a new delivery of it is a new message
        new: list[PairingRequestReceived] = []
        for request in self._inbox:
            digest = parcel_digest(request.dedup_key)
            if digest in taken:
                self._redeliveries_ignored += 1
                self._count(PAIRING_REDELIVERIES)
                workflow.logger.info(
                    "Ignored redelivered pairing request", extra={"parcelId": request.parcel_id}
                )
                continue
            taken[digest] = now
            new.append(request)
        self._inbox.clear()
        if len(taken) > MAX_REMEMBERED_PARCELS:
            excess = len(taken) - MAX_REMEMBERED_PARCELS
            for digest in list(taken)[:excess]:  # insertion order: the oldest first
                del taken[digest]
            workflow.logger.warning(
                "Pair took more parcels than it can remember; forgot the oldest",
                extra={"forgotten": excess, "remembered": MAX_REMEMBERED_PARCELS},
            )
        return new

    def _fold(
        self, requests: Sequence[PairingRequestReceived], pending: dict[str, WaitingRequest]
    ) -> list[WaitingRequest]:
        """Fold new requests into ``pending``; return those that changed."""
        updated: dict[str, WaitingRequest] = {}
        for request in requests:
            previous = pending.get(request.requester_veraid_id)
            # A resend replaces the endpoint and key but does not extend the expiry.
            first_received = previous.first_received if previous else workflow.now()
            item = WaitingRequest(request, first_received)
            pending[request.requester_veraid_id] = updated[request.requester_veraid_id] = item
            workflow.logger.info(
                "Contact request created or updated",
                extra={
                    "requesterVeraidId": request.requester_veraid_id,
                    "targetVeraidId": request.target_veraid_id,
                    "parcelId": request.parcel_id,
                },
            )
        return list(updated.values())

    async def _store(
        self, items: Sequence[WaitingRequest], pending: dict[str, WaitingRequest], ttl: timedelta
    ) -> None:
        """Mirror ``items`` in MongoDB; on a fresh run's first store, take up what is there."""
        read = self._unread and workflow.patched(PAIRS_2026_12)
        self._unread = False
        results = await asyncio.gather(
            *(
                workflow.execute_local_activity_method(
                    PairingRequestStore.store,
                    PendingPairingRequest(
                        requester_veraid_id=item.request.requester_veraid_id,
                        target_veraid_id=item.request.target_veraid_id,
                        requester_endpoint_id=item.request.requester_endpoint_id,
                        requester_id_key_b64=item.request.requester_id_key_b64,
                        first_received=item.first_received,
                        kind=self.KIND,
                        signature_bundle_b64=item.request.signature_bundle_b64 or None,
                        read_counterpart=read and index == 0,
                    ),
                    start_to_close_timeout=_STORE_TIMEOUT,
                    retry_policy=RETRY_FOREVER,
                )
                for index, item in enumerate(items)
            )
        )
        if read and results[0] is not None:
            self._take_up(items[0], results[0], pending, ttl)

    def _take_up(
        self,
        item: WaitingRequest,
        stored: StoredPair,
        pending: dict[str, WaitingRequest],
        ttl: timedelta,
    ) -> None:
        """Fold in what MongoDB held: the request's own creation date, and its counterpart."""
        requester = item.request.requester_veraid_id
        if item.first_received > stored.first_received > workflow.now() - ttl:
            # Stored before this run (a resend): it expires from when it was first stored.
            pending[requester] = WaitingRequest(item.request, stored.first_received)
        counterpart = stored.counterpart
        if counterpart is None or counterpart.requester_veraid_id in pending:
            return
        log_fields = {
            "requesterVeraidId": counterpart.requester_veraid_id,
            "targetVeraidId": counterpart.target_veraid_id,
            "creationDate": counterpart.first_received.isoformat(),
        }
        if counterpart.first_received + ttl <= workflow.now():
            # MongoDB's TTL index removes it a day after its expiry; it must not match.
            workflow.logger.info("Stored contact request already expired", extra=log_fields)
            return
        pending[counterpart.requester_veraid_id] = WaitingRequest(
            _received(counterpart, server_endpoint_id=item.request.server_endpoint_id),
            counterpart.first_received,
        )
        workflow.logger.info("Stored contact request taken up", extra=log_fields)

    async def _deliver_match(self, pair: Sequence[WaitingRequest], match_number: int) -> None:
        first, second = (item.request for item in pair)
        messages = [
            self._match_to(recipient=first, contact=second, match_number=match_number),
            self._match_to(recipient=second, contact=first, match_number=match_number),
        ]
        # The stored copies can go before the matches are sent: the workflow, not MongoDB,
        # holds what the matches are made of, so a crash in between loses nothing.
        if workflow.patched(PAIRS_2026_12):
            await self._conclude(messages, first)
        else:
            await asyncio.gather(
                *(self._send_match(message) for message in messages),
                self._delete(first.requester_veraid_id, first.target_veraid_id),
            )
        workflow.logger.info(
            "Contact request matched",
            extra={
                "requesterVeraidId": second.requester_veraid_id,
                "targetVeraidId": second.target_veraid_id,
            },
        )

    async def _conclude(
        self, messages: Sequence[OutgoingMessage], first: PairingRequestReceived
    ) -> None:
        """Delete the stored requests and send both matches in one local activity; a
        message the sink did not take then gets the usual retries, on its own."""
        outcome = await workflow.execute_local_activity_method(
            MatchDelivery.deliver,
            MatchToDeliver(
                list(messages),
                PairingRequestsToDelete(
                    first.requester_veraid_id, first.target_veraid_id, kind=self.KIND
                ),
            ),
            start_to_close_timeout=_MATCH_TIMEOUT,
            retry_policy=RETRY_FOREVER,  # it fails only if MongoDB does
        )
        retried = set(outcome.undelivered_event_ids)
        for message in messages:
            if message.event_id not in retried:
                self._log_match_sent(message)
        await asyncio.gather(
            *(self._send_match(message) for message in messages if message.event_id in retried)
        )

    def _match_to(
        self,
        *,
        recipient: PairingRequestReceived,
        contact: PairingRequestReceived,
        match_number: int,
    ) -> OutgoingMessage:
        content_type, content = self._match_message(recipient, contact)
        return outgoing_message(
            event_id=event_id(f"match-{match_number}-to-{recipient.requester_veraid_id}"),
            sender_endpoint_id=recipient.server_endpoint_id,
            recipient_endpoint_id=recipient.requester_endpoint_id,
            content_type=content_type,
            content_b64=base64.b64encode(content).decode("ascii"),
        )

    async def _send_match(self, message: OutgoingMessage) -> None:
        if await emit(message, veraid_ids=self._state.veraid_ids):
            self._log_match_sent(message)

    def _log_match_sent(self, message: OutgoingMessage) -> None:
        workflow.logger.info(
            "Pairing match sent",
            extra={"peerId": message.recipient_endpoint_id, "eventId": message.event_id},
        )

    async def _expire(self, veraid_ids: Sequence[str], expired: Sequence[WaitingRequest]) -> None:
        await self._delete(*veraid_ids)
        for item in expired:
            workflow.logger.info(
                "Contact request expired",
                extra={
                    "requesterVeraidId": item.request.requester_veraid_id,
                    "targetVeraidId": item.request.target_veraid_id,
                },
            )

    async def _delete(self, veraid_id_a: str, veraid_id_b: str) -> None:
        await workflow.execute_local_activity_method(
            PairingRequestStore.delete,
            PairingRequestsToDelete(veraid_id_a, veraid_id_b, kind=self.KIND),
            start_to_close_timeout=_STORE_TIMEOUT,
            retry_policy=RETRY_FOREVER,
        )


def _carried_parcels(state: PairingInput, now: datetime) -> dict[str, datetime]:
    """The parcels taken by earlier runs, by digest, oldest first."""
    taken = {parcel.digest: parcel.taken for parcel in state.taken_parcels}
    # A run started before the digests carried the keys themselves, without their times.
    for key in state.seen_parcels:
        taken.setdefault(parcel_digest(key), now)
    return taken


def _received(stored: PendingPairingRequest, *, server_endpoint_id: str) -> PairingRequestReceived:
    """A stored request as if it had been signalled; its parcel is unknown (and taken).

    Stored requests do not say which of our endpoints they were sent to: the request that
    found them was sent to the same server, so the match comes from that endpoint.
    """
    return PairingRequestReceived(
        parcel_id="",
        server_endpoint_id=server_endpoint_id,
        requester_endpoint_id=stored.requester_endpoint_id,
        requester_veraid_id=stored.requester_veraid_id,
        target_veraid_id=stored.target_veraid_id,
        requester_id_key_b64=stored.requester_id_key_b64,
        signature_bundle_b64=stored.signature_bundle_b64 or "",
    )
