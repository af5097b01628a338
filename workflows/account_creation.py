"""Account creation: one workflow per account request, a saga against the VeraId Authority.

The workflow id is the sender's endpoint id plus a hash of the request's bytes, and the
ingress uses signal-with-start, so a broker redelivery or the agent resending the same
request reaches the running (or lingering) workflow instead of creating a second member.
Once it has replied, the workflow continues as new with only what answering copies needs
(the assigned id, the bundle's path at the Authority, the reply's event id): the request's key
and the member id bundle leave with the old run's history, which the namespace's retention
deletes. For a while it answers each further copy with the reply again (the same event id, a
bundle fetched afresh), then ends.

The ingress has already verified the request's signature; the signal carries what it asks
for. Steps: name the account (by the worker's naming rules), create the member (with a
random numeric suffix when the name is taken), import the
request's key for Letro's service OID, fetch the member id bundle, reply. If the key import
or the bundle retrieval fails for good, the member is deleted so no orphan remains.

Each Authority call is retried, 1 s doubling to ``authority_retry_max_interval_seconds``
apart, for ``authority_retry_seconds`` (a week by default: as long as the broker keeps the
message), through outages and through 401/403 alike; only answers that can never succeed
(see ``activities.accounts``) end the saga early. (Behind the ``patient-authority-retries``
patch; older runs keep the old policy.)

The lost create-member answer. The Authority has no idempotency key and no look-up by name,
so when an attempt to create a member fails after it may have reached the Authority, and a
retry of the same call then meets 409, the name may be held by a member we created and can
never find. The activity reports that 409 as ``PossibleOrphanMember``; the saga logs "Possible
orphan member" with the organisation and the name, counts it
(``letro_account_orphan_members_total``), and goes on as for any taken name, with a suffixed
name. An operator deletes the orphan (it has no key) if it is one. Only the user's first
choice of name can be lost this way, never the account.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.types import MethodAsyncSingleParam

with workflow.unsafe.imports_passed_through():
    from activities.accounts import POSSIBLE_ORPHAN_MEMBER, AccountActivities, MemberNameTaken
    from contract.accounts import (
        AccountCreationInput,
        AccountCreationOutcome,
        AccountCreationStatus,
        AccountRequestReceived,
        AccountRequestToName,
        AccountToCreate,
        AnsweredAccountRequest,
        CreatedMember,
        ImportedKey,
        KeyToImport,
        MemberToCreate,
    )
    from contract.messages import OutgoingMessage
    from letro.account_messages import serialise_account_creation
    from letro.account_names import name_with_suffix
    from letro.contact_pairing import LETRO_SERVICE_OID
    from letro.content_types import ACCOUNT_CREATION
    from metrics import ACCOUNT_ORPHAN_MEMBERS, ACCOUNT_OUTCOMES, count
    from workflows import visibility
    from workflows.replies import RETRY_FOREVER, emit, event_id, outgoing_message

WORKFLOW_ID_PREFIX = "account-creation"

# Runs started before the ``patient-authority-retries`` patch: transient Authority failures
# are retried with backoff until the configured deadline (``schedule_to_close_timeout``);
# each attempt is bounded on its own too.
_AUTHORITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
_AUTHORITY_ATTEMPT_TIMEOUT = timedelta(seconds=30)
_NAMING_TIMEOUT = timedelta(seconds=10)
# Patch (see README, "Changing a workflow"): after replying, continue as new with only what
# answering copies needs, so the key and the bundle leave with the old run's history.
_FORGET_AFTER_REPLYING = "forget-key-and-bundle-after-replying"
# Patch: Authority calls back off up to the configured interval (not one minute), so a week
# of retries is a bounded number of attempts (about 2,000 per call at five minutes).
_PATIENT_RETRIES = "patient-authority-retries"
_Argument = TypeVar("_Argument")
_Result = TypeVar("_Result")


def workflow_id_for(sender_endpoint_id: str, content: bytes) -> str:
    """The same for every copy of one request from one endpoint."""
    digest = hashlib.sha256(content).hexdigest()[:32]
    return f"{WORKFLOW_ID_PREFIX}:{sender_endpoint_id}:{digest}"


class _NoAccount(Exception):
    """The saga ended without an account; already logged."""


@workflow.defn(name="AccountCreation")
class AccountCreation:
    def __init__(self) -> None:
        self._inbox: list[AccountRequestReceived] = []
        self._copies = 0
        self._replies = 0
        self._assigned: str | None = None
        self._max_interval = timedelta(minutes=5)

    # Named after its signal, as ``PairWorkflow.pairing_request`` is, for the same reason.
    @workflow.signal
    def account_request(self, request: AccountRequestReceived) -> None:
        self._inbox.append(request)
        self._copies += 1

    @workflow.query(name="status")
    def status(self) -> AccountCreationStatus:
        return AccountCreationStatus(self._assigned, self._copies, self._replies)

    @workflow.run
    async def run(self, state: AccountCreationInput) -> AccountCreationOutcome:
        if state.answered is not None:
            return await self._answer_copies(state.answered)
        await workflow.wait_condition(lambda: bool(self._inbox))
        first = self._inbox[0]
        account = await workflow.execute_local_activity_method(
            AccountActivities.name_account,
            AccountRequestToName(first.requested_user_name, first.locale, first.public_key_b64),
            start_to_close_timeout=_NAMING_TIMEOUT,
            retry_policy=RETRY_FOREVER,  # pure computation: only a worker crash can fail it
        )
        self._max_interval = timedelta(seconds=account.authority_retry_max_interval_seconds)
        try:
            assigned, key, bundle_b64 = await self._create(account)
        except _NoAccount:
            count(workflow.metric_meter(), ACCOUNT_OUTCOMES, outcome="not_created")
            visibility.record(outcome="not-created")
            return AccountCreationOutcome(None, 0)
        count(workflow.metric_meter(), ACCOUNT_OUTCOMES, outcome="created")
        visibility.record(outcome="created")
        self._assigned = assigned
        reply = self._reply(first, assigned, bundle_b64, event_id("account-creation"))

        # Every copy received so far (including those that arrived during the saga) is
        # answered by this one reply; later copies get it again, until the window closes.
        window = timedelta(seconds=account.dedup_window_seconds)
        if workflow.patched(_FORGET_AFTER_REPLYING):
            self._inbox.clear()
            await self._emit(reply)
            # The key and the bundle stay in this run's history only, which the namespace's
            # retention deletes; the next run, which answers copies, holds neither.
            workflow.continue_as_new(
                AccountCreationInput(
                    AnsweredAccountRequest(
                        assigned_user_id=assigned,
                        bundle_path=key.bundle_path,
                        reply_event_id=reply.event_id,
                        answer_copies_until=workflow.now() + window,
                        authority_retry_seconds=account.authority_retry_seconds,
                        replies_sent=self._replies,
                        authority_retry_max_interval_seconds=(
                            account.authority_retry_max_interval_seconds
                        ),
                    )
                )
            )
        while True:
            self._inbox.clear()
            await self._emit(reply)
            try:
                await workflow.wait_condition(lambda: bool(self._inbox), timeout=window)
            except TimeoutError:
                return AccountCreationOutcome(assigned, self._replies)
            workflow.logger.info(
                "Account request received again; sending the same reply",
                extra={"userId": assigned, "parcelId": self._inbox[-1].parcel_id},
            )

    async def _answer_copies(self, answered: AnsweredAccountRequest) -> AccountCreationOutcome:
        """Answer each copy of the request with the reply it had, until the window closes."""
        self._assigned, self._replies = answered.assigned_user_id, answered.replies_sent
        self._max_interval = timedelta(seconds=answered.authority_retry_max_interval_seconds)
        while True:
            outcome = AccountCreationOutcome(answered.assigned_user_id, self._replies)
            timeout = answered.answer_copies_until - workflow.now()
            if timeout <= timedelta(0):
                return outcome  # no timer: the window closed while the last copy was answered
            try:
                await workflow.wait_condition(lambda: bool(self._inbox), timeout=timeout)
            except TimeoutError:
                return outcome
            copy = self._inbox[-1]
            self._inbox.clear()
            workflow.logger.info(
                "Account request received again; sending the same reply",
                extra={"userId": answered.assigned_user_id, "parcelId": copy.parcel_id},
            )
            try:
                bundle_b64 = await self._authority_call(
                    AccountActivities.get_member_bundle,
                    ImportedKey(answered.bundle_path),
                    answered.authority_retry_seconds,
                )
            except ActivityError as error:
                workflow.logger.error(
                    "Could not fetch the member id bundle again; the copy gets no reply",
                    extra={"userId": answered.assigned_user_id, "err": _cause(error)},
                )
                continue
            reply = self._reply(
                copy, answered.assigned_user_id, bundle_b64, answered.reply_event_id
            )
            await self._emit(reply)

    async def _create(self, account: AccountToCreate) -> tuple[str, ImportedKey, str]:
        member, user_id = await self._create_member(account)
        try:
            key = await self._authority_call(
                AccountActivities.import_public_key,
                KeyToImport(member.public_keys_path, account.public_key_b64, LETRO_SERVICE_OID),
                account.authority_retry_seconds,
            )
            bundle_b64 = await self._authority_call(
                AccountActivities.get_member_bundle, key, account.authority_retry_seconds
            )
        except ActivityError as error:
            workflow.logger.error(
                "Failed to complete user creation; deleting the member",
                extra={"memberPath": member.self_path, "err": _cause(error)},
            )
            await workflow.execute_activity_method(
                AccountActivities.delete_member,
                member,
                start_to_close_timeout=_AUTHORITY_ATTEMPT_TIMEOUT,
                retry_policy=RETRY_FOREVER,  # compensation must eventually happen
            )
            workflow.logger.info("Member deleted", extra={"memberPath": member.self_path})
            raise _NoAccount from None
        return user_id, key, bundle_b64

    async def _create_member(self, account: AccountToCreate) -> tuple[CreatedMember, str]:
        name = account.user_name
        for attempt in range(account.name_attempts):
            if attempt:
                name = name_with_suffix(account.user_name, workflow.random())
            try:
                member = await self._authority_call(
                    AccountActivities.create_member,
                    MemberToCreate(account.domain, name),
                    account.authority_retry_seconds,
                )
            except ActivityError as error:
                if _error_type(error) == POSSIBLE_ORPHAN_MEMBER:
                    self._possible_orphan(account.domain, name)
                    continue
                if _error_type(error) == MemberNameTaken.__name__:
                    workflow.logger.debug(
                        "User name taken; will try adding a random suffix",
                        extra={"userName": name},
                    )
                    continue
                workflow.logger.error(
                    "Failed to create user", extra={"userName": name, "err": _cause(error)}
                )
                raise _NoAccount from None
            workflow.logger.info("User created in VeraId Authority", extra={"userName": name})
            return member, f"{name}@{account.domain}"
        workflow.logger.error(
            "Failed to create user: all user names considered were taken",
            extra={"userName": account.user_name, "attempts": account.name_attempts},
        )
        raise _NoAccount

    def _possible_orphan(self, organisation: str, name: str) -> None:
        # Logged and counted so an operator can delete it: we cannot find it ourselves.
        workflow.logger.warning(
            "Possible orphan member: a create-member attempt whose answer was lost may have"
            " created it; trying a suffixed name. Delete it if it has no key",
            extra={"organisation": organisation, "memberName": name},
        )
        count(workflow.metric_meter(), ACCOUNT_ORPHAN_MEMBERS)

    async def _authority_call(
        self,
        activity: MethodAsyncSingleParam[AccountActivities, _Argument, _Result],
        argument: _Argument,
        retry_seconds: float,
    ) -> _Result:
        retry_policy = _AUTHORITY_RETRY
        if workflow.patched(_PATIENT_RETRIES):
            retry_policy = RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=self._max_interval,
            )
        return await workflow.execute_activity_method(
            activity,
            argument,
            schedule_to_close_timeout=timedelta(seconds=retry_seconds),
            start_to_close_timeout=_AUTHORITY_ATTEMPT_TIMEOUT,
            retry_policy=retry_policy,
        )

    def _reply(
        self, request: AccountRequestReceived, assigned: str, bundle_b64: str, reply_id: str
    ) -> OutgoingMessage:
        # The name and locale as requested: every copy of the request says the same.
        content = serialise_account_creation(
            request.requested_user_name, request.locale, assigned, base64.b64decode(bundle_b64)
        )
        return outgoing_message(
            event_id=reply_id,  # the same for every copy: the endpoint keeps one
            sender_endpoint_id=request.server_endpoint_id,
            recipient_endpoint_id=request.sender_endpoint_id,
            content_type=ACCOUNT_CREATION,
            content_b64=base64.b64encode(content).decode("ascii"),
        )

    async def _emit(self, reply: OutgoingMessage) -> None:
        if not await emit(reply, veraid_ids=[self._assigned] if self._assigned else []):
            return  # kept for an operator, and logged
        self._replies += 1
        workflow.logger.info(
            "Account creation reply sent",
            extra={"userId": self._assigned, "eventId": reply.event_id, "replies": self._replies},
        )


def _cause(error: ActivityError) -> str:
    cause = error.cause
    return str(cause) if cause is not None else str(error)


def _error_type(error: ActivityError) -> str | None:
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None
