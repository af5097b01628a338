"""The account creation activities: naming the account, and each VeraId Authority call.

Authority failures become Temporal errors the workflow can act on: transient ones are plain
(retryable) errors, 4xx answers are non-retryable with the exception's name as the type, so
the workflow tells a taken name (``MemberNameTaken``) from a refusal.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.veraid_authority import (
    AuthorityClient,
    AuthorityError,
    AuthorityNotFound,
    AuthorityRefused,
    AuthorityUnavailable,
)
from letro.account_names import NamingRules, domain_for_locale, sanitise_user_name

logger = structlog.get_logger(__name__)

LETRO_SERVICE_OID = "1.3.6.1.4.1.58708.2.0"


@dataclass(frozen=True)
class AccountRequestToName:
    """What an account request, verified by the ingress, asks for."""

    requested_user_name: str
    locale: str
    public_key_b64: str


@dataclass(frozen=True)
class AccountToCreate:
    """A verified request and the name and domain the rules give it."""

    requested_user_name: str
    locale: str
    public_key_b64: str
    user_name: str
    domain: str
    # Saga settings from the worker's configuration, so the workflow needs none of its own.
    name_attempts: int
    authority_retry_seconds: float
    dedup_window_seconds: float


@dataclass(frozen=True)
class MemberToCreate:
    domain: str
    user_name: str


@dataclass(frozen=True)
class CreatedMember:
    self_path: str
    public_keys_path: str


@dataclass(frozen=True)
class KeyToImport:
    public_keys_path: str
    public_key_b64: str
    service_oid: str


@dataclass(frozen=True)
class ImportedKey:
    bundle_path: str


@dataclass(frozen=True)
class AccountSagaOptions:
    rules: NamingRules
    name_attempts: int
    authority_retry_seconds: float
    dedup_window_seconds: float


def _temporal_error(error: AuthorityError) -> Exception:
    if isinstance(error, AuthorityUnavailable):
        return ApplicationError(str(error), type=type(error).__name__)
    non_retryable = isinstance(error, AuthorityRefused)
    return ApplicationError(str(error), type=type(error).__name__, non_retryable=non_retryable)


class AccountActivities:
    """One instance per worker, holding the Authority client and the naming rules."""

    def __init__(self, authority: AuthorityClient | None, options: AccountSagaOptions) -> None:
        self._authority = authority
        self._options = options

    def _client(self) -> AuthorityClient:
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
