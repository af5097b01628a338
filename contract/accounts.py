"""Account creation: the workflow's signal, input, result and status, and the inputs and
results of its activities (naming the account, and each VeraId Authority call)."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class AccountRequestReceived:
    """Signal: one copy of the request, whose signature the ingress verified."""

    parcel_id: str
    server_endpoint_id: str
    sender_endpoint_id: str
    requested_user_name: str
    locale: str
    public_key_b64: str  # DER SubjectPublicKeyInfo, the key the request was signed with


@dataclass(frozen=True)
class AnsweredAccountRequest:
    """An account request already answered: what answering its copies needs, and no more.

    No key and no bundle: for a copy, the bundle is fetched again from the Authority, so a run
    that waits for copies holds no personal data beyond the assigned id.
    """

    assigned_user_id: str
    bundle_path: str
    reply_event_id: str
    answer_copies_until: datetime
    authority_retry_seconds: float
    replies_sent: int
    # Added later, with a default: runs continued as new before then carry no such field.
    authority_retry_max_interval_seconds: float = 300.0


@dataclass(frozen=True)
class AccountCreationInput:
    answered: AnsweredAccountRequest | None = None  # set by the run that replied


@dataclass(frozen=True)
class AccountCreationOutcome:
    assigned_user_id: str | None  # None: no account (refused request or Authority failure)
    replies_sent: int


@dataclass(frozen=True)
class AccountCreationStatus:
    assigned_user_id: str | None
    copies_received: int
    replies_sent: int


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
    # The longest wait between two attempts of one Authority call (added with a default, so
    # histories recorded before it still decode).
    authority_retry_max_interval_seconds: float = 300.0


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
