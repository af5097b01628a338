"""Account creation: one workflow per account request, a saga against the VeraId Authority.

The workflow id is the sender's endpoint id plus a hash of the request's bytes, and the
ingress uses signal-with-start, so a broker redelivery or the agent resending the same
request reaches the running (or lingering) workflow instead of creating a second member.
Once the account exists the workflow stays open for a while, answering each further copy of
the request with the same reply (same content, same event id), then ends.

The ingress has already verified the request's signature; the signal carries what it asks
for. Steps: name the account (by the worker's naming rules), create the member (with a
random numeric suffix when the name is taken), import the
request's key for Letro's service OID, fetch the member id bundle, reply. If the key import
or the bundle retrieval fails for good, the member is deleted so no orphan remains.
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
    from activities.accounts import AccountActivities, MemberNameTaken
    from contract.accounts import (
        AccountCreationInput,
        AccountCreationOutcome,
        AccountCreationStatus,
        AccountRequestReceived,
        AccountRequestToName,
        AccountToCreate,
        CreatedMember,
        KeyToImport,
        MemberToCreate,
    )
    from contract.messages import OutgoingMessage
    from letro.account_messages import serialise_account_creation
    from letro.account_names import name_with_suffix
    from letro.contact_pairing import LETRO_SERVICE_OID
    from letro.content_types import ACCOUNT_CREATION
    from metrics import ACCOUNT_OUTCOMES, count
    from workflows import visibility
    from workflows.replies import RETRY_FOREVER, emit, event_id, outgoing_message

WORKFLOW_ID_PREFIX = "account-creation"

# Transient Authority failures are retried with backoff until the configured deadline
# (``schedule_to_close_timeout``); each attempt is bounded on its own too.
_AUTHORITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
_AUTHORITY_ATTEMPT_TIMEOUT = timedelta(seconds=30)
_NAMING_TIMEOUT = timedelta(seconds=10)
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

    # Named after its signal, as ``PairWorkflow.pairing_request`` is, for the same reason.
    @workflow.signal
    def account_request(self, request: AccountRequestReceived) -> None:
        self._inbox.append(request)
        self._copies += 1

    @workflow.query(name="status")
    def status(self) -> AccountCreationStatus:
        return AccountCreationStatus(self._assigned, self._copies, self._replies)

    @workflow.run
    async def run(self, _: AccountCreationInput) -> AccountCreationOutcome:
        await workflow.wait_condition(lambda: bool(self._inbox))
        first = self._inbox[0]
        account = await workflow.execute_local_activity_method(
            AccountActivities.name_account,
            AccountRequestToName(first.requested_user_name, first.locale, first.public_key_b64),
            start_to_close_timeout=_NAMING_TIMEOUT,
            retry_policy=RETRY_FOREVER,  # pure computation: only a worker crash can fail it
        )
        try:
            assigned, bundle_b64 = await self._create(account)
        except _NoAccount:
            count(workflow.metric_meter(), ACCOUNT_OUTCOMES, outcome="not_created")
            visibility.record(outcome="not-created")
            return AccountCreationOutcome(None, 0)
        count(workflow.metric_meter(), ACCOUNT_OUTCOMES, outcome="created")
        visibility.record(outcome="created")
        self._assigned = assigned
        reply = self._reply(first, account, assigned, bundle_b64)

        # Every copy received so far (including those that arrived during the saga) is
        # answered by this one reply; later copies get it again, until the window closes.
        window = timedelta(seconds=account.dedup_window_seconds)
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

    async def _create(self, account: AccountToCreate) -> tuple[str, str]:
        member, user_id = await self._create_member(account)
        try:
            key = await self._authority_call(
                AccountActivities.import_public_key,
                KeyToImport(member.public_keys_path, account.public_key_b64, LETRO_SERVICE_OID),
                account,
            )
            bundle_b64 = await self._authority_call(
                AccountActivities.get_member_bundle, key, account
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
        return user_id, bundle_b64

    async def _create_member(self, account: AccountToCreate) -> tuple[CreatedMember, str]:
        name = account.user_name
        for attempt in range(account.name_attempts):
            if attempt:
                name = name_with_suffix(account.user_name, workflow.random())
            try:
                member = await self._authority_call(
                    AccountActivities.create_member, MemberToCreate(account.domain, name), account
                )
            except ActivityError as error:
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

    async def _authority_call(
        self,
        activity: MethodAsyncSingleParam[AccountActivities, _Argument, _Result],
        argument: _Argument,
        account: AccountToCreate,
    ) -> _Result:
        return await workflow.execute_activity_method(
            activity,
            argument,
            schedule_to_close_timeout=timedelta(seconds=account.authority_retry_seconds),
            start_to_close_timeout=_AUTHORITY_ATTEMPT_TIMEOUT,
            retry_policy=_AUTHORITY_RETRY,
        )

    def _reply(
        self,
        request: AccountRequestReceived,
        account: AccountToCreate,
        assigned: str,
        bundle_b64: str,
    ) -> OutgoingMessage:
        content = serialise_account_creation(
            account.requested_user_name, account.locale, assigned, base64.b64decode(bundle_b64)
        )
        return outgoing_message(
            event_id=event_id("account-creation"),  # one reply per run, resent as it is
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
