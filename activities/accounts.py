"""The account creation activities: naming the account, and each VeraId Authority call.

The Authority is reached through :class:`Authority`, implemented over HTTP by
``activities.veraid_authority``. Every failure it reports is one of the
:class:`AuthorityError` types below, so what to retry is decided from the type alone:
:class:`AuthorityUnavailable` may succeed later (5xx, timeouts, connection errors),
:class:`AuthorityUnauthorised` (401, 403) will once an operator fixes our credentials,
:class:`AuthorityRefused` and its subclasses will not (other 4xx), :class:`MemberNameTaken` is
the 409 the account saga answers with a new name.

Those failures become Temporal errors the workflow can act on: the first two are retryable
(the workflow's retry policy decides for how long), refusals are non-retryable with the
exception's name as the type, so the workflow tells a taken name (``MemberNameTaken``) from a
refusal. Every failure is logged, and counted in ``letro_authority_errors_total``.

A 409 for a name that an earlier attempt of the same activity may have created (the attempt
failed after sending: a timeout, a reset connection, a 5xx, the worker killed mid-call) is
``PossibleOrphanMember``: the name may be ours, with a member no one can reach, since the
Authority has no idempotency key and no look-up by name.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from typing import Protocol

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from contract.accounts import (
    AccountRequestToName,
    AccountToCreate,
    CreatedMember,
    ImportedKey,
    KeyToImport,
    MemberToCreate,
)
from letro.account_names import NamingRules, domain_for_locale, sanitise_user_name
from metrics import AUTHORITY_ERRORS, count

logger = structlog.get_logger(__name__)


class AuthorityError(Exception):
    """Base class of every VeraId Authority client error."""


class AuthorityUnavailable(AuthorityError):
    """The Authority could not be reached or failed on its side; retrying may succeed."""


class AuthorityRefused(AuthorityError):
    """The Authority answered 4xx: the same request will fail again."""

    def __init__(self, status: int, problem: str | None, operation: str) -> None:
        detail = f" ({problem})" if problem else ""
        super().__init__(f"VeraId Authority refused to {operation}: HTTP {status}{detail}")
        self.status = status
        self.problem = problem


class AuthorityUnauthorised(AuthorityError):
    """401 or 403: our token is wrong, expired or not allowed; retried until an operator
    fixes it, since every request made meanwhile would otherwise be lost."""

    def __init__(self, status: int, detail: str | None, operation: str) -> None:
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"VeraId Authority rejected our credentials to {operation}: HTTP {status}{why}"
        )
        self.status = status


class AuthorityNotFound(AuthorityRefused):
    """404: the organisation, member or key does not exist."""


class MemberNameTaken(AuthorityRefused):
    """409: another member of the organisation has that name."""


class AuthorityInvalidResponse(AuthorityError):
    """A 2xx answer that is not what the API documents."""


@dataclass(frozen=True)
class MemberPaths:
    self_path: str
    public_keys_path: str


@dataclass(frozen=True)
class PublicKeyPaths:
    self_path: str
    bundle_path: str


class Authority(Protocol):
    """The VeraId Authority calls account creation makes; each raises an AuthorityError."""

    async def create_member(self, organisation: str, name: str) -> MemberPaths: ...

    async def import_public_key(
        self, public_keys_path: str, public_key_der: bytes, service_oid: str
    ) -> PublicKeyPaths: ...

    async def get_member_bundle(self, bundle_path: str) -> bytes: ...

    async def delete_member(self, member_path: str) -> None: ...


@dataclass(frozen=True)
class AccountSagaOptions:
    rules: NamingRules
    name_attempts: int
    authority_retry_seconds: float
    dedup_window_seconds: float
    authority_retry_max_interval_seconds: float = 300.0


POSSIBLE_ORPHAN_MEMBER = "PossibleOrphanMember"


def _temporal_error(error: AuthorityError, error_type: str | None = None) -> Exception:
    info = activity.info()
    error_type = error_type or type(error).__name__
    count(activity.metric_meter(), AUTHORITY_ERRORS, operation=info.activity_type, error=error_type)
    fields = {
        "operation": info.activity_type,
        "attempt": info.attempt,
        "workflowId": info.workflow_id,
        "err": str(error),
    }
    if isinstance(error, AuthorityUnauthorised):
        # Alerted on (infra/deploy/monitoring.yaml): nothing is created until someone acts.
        logger.error(
            "VeraId Authority credentials are wrong or expired (VAUTH_API_TOKEN or"
            " VAUTH_API_AUDIENCE); retrying",
            **fields,
        )
        return ApplicationError(str(error), type=error_type)
    if isinstance(error, AuthorityUnavailable):
        logger.warning("VeraId Authority call failed; retrying", **fields)
        return ApplicationError(str(error), type=error_type)
    non_retryable = isinstance(error, AuthorityRefused)
    if not isinstance(error, MemberNameTaken):  # routine: the saga tries another name
        logger.error("VeraId Authority call failed", **fields, retried=not non_retryable)
    return ApplicationError(str(error), type=error_type, non_retryable=non_retryable)


class AccountActivities:
    """One instance per worker, holding the Authority client and the naming rules."""

    def __init__(self, authority: Authority | None, options: AccountSagaOptions) -> None:
        self._authority = authority
        self._options = options

    def _client(self) -> Authority:
        if self._authority is None:
            raise ApplicationError(
                "VAUTH_API_URL is not set: accounts cannot be created",
                type="AuthorityNotConfigured",
                non_retryable=True,
            )
        return self._authority

    @activity.defn(name="name_account")
    async def name_account(self, request: AccountRequestToName) -> AccountToCreate:
        options = self._options
        # Not the workflow's random: this runs once and its result is recorded in history.
        user_name = sanitise_user_name(request.requested_user_name, options.rules, random.Random())
        account = AccountToCreate(
            requested_user_name=request.requested_user_name,
            locale=request.locale,
            public_key_b64=request.public_key_b64,
            user_name=user_name,
            domain=domain_for_locale(request.locale, options.rules),
            name_attempts=options.name_attempts,
            authority_retry_seconds=options.authority_retry_seconds,
            dedup_window_seconds=options.dedup_window_seconds,
            authority_retry_max_interval_seconds=options.authority_retry_max_interval_seconds,
        )
        logger.info(
            "Account named",
            requestedUserName=request.requested_user_name,
            locale=request.locale,
            userName=user_name,
            domain=account.domain,
        )
        return account

    @activity.defn(name="create_vauth_member")
    async def create_member(self, member: MemberToCreate) -> CreatedMember:
        try:
            paths = await self._client().create_member(member.domain, member.user_name)
        except MemberNameTaken as error:
            # Conservative: any earlier attempt may have reached the Authority, even one
            # whose failure looked local, so a taken name then may be our own lost member.
            if activity.info().attempt > 1:
                raise _temporal_error(error, POSSIBLE_ORPHAN_MEMBER) from error
            raise _temporal_error(error) from error
        except AuthorityError as error:
            raise _temporal_error(error) from error
        return CreatedMember(paths.self_path, paths.public_keys_path)

    @activity.defn(name="import_vauth_public_key")
    async def import_public_key(self, key: KeyToImport) -> ImportedKey:
        try:
            paths = await self._client().import_public_key(
                key.public_keys_path, base64.b64decode(key.public_key_b64), key.service_oid
            )
        except AuthorityError as error:
            raise _temporal_error(error) from error
        return ImportedKey(paths.bundle_path)

    @activity.defn(name="get_vauth_member_bundle")
    async def get_member_bundle(self, key: ImportedKey) -> str:
        try:
            bundle = await self._client().get_member_bundle(key.bundle_path)
        except AuthorityError as error:
            raise _temporal_error(error) from error
        return base64.b64encode(bundle).decode("ascii")

    @activity.defn(name="delete_vauth_member")
    async def delete_member(self, member: CreatedMember) -> None:
        try:
            await self._client().delete_member(member.self_path)
        except AuthorityNotFound:
            return  # already gone: an earlier attempt succeeded but its answer was lost
        except AuthorityError as error:
            raise _temporal_error(error) from error
