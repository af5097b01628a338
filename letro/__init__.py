"""Letro's own protocol: content types, VeraId user ids and the legacy pairing messages.

Everything here is sans-I/O: pure functions and immutable values, no network and no state.
"""

from letro.connection_params import (
    MAX_REQUESTED_NAME_BYTES,
    ConnectionParamsRequest,
    parse_connection_params_request,
)
from letro.content_types import (
    ACCOUNT_CREATION,
    ACCOUNT_REQUEST,
    ALL_CONTENT_TYPES,
    CONNECTION_PARAMS,
    CONNECTION_PARAMS_REQUEST,
    CONTACT_PAIRING_AUTHORISATION,
    CONTACT_PAIRING_FAILURE,
    CONTACT_PAIRING_REQUEST,
    MISCONFIGURED_INTERNET_ENDPOINT,
    PAIRING_AUTH,
    PAIRING_AUTH_TMP,
    PAIRING_COMPLETION_TMP,
    PAIRING_MATCH_TMP,
    PAIRING_REQUEST_TMP,
)
from letro.errors import (
    InvalidVeraidId,
    LetroProtocolError,
    MalformedConnectionParamsRequest,
    MalformedPairingRequest,
)
from letro.legacy_pairing import (
    LegacyPairingRequest,
    parse_pairing_request,
    serialise_pairing_match,
)
from letro.veraid_ids import (
    MAX_DOMAIN_NAME_LENGTH,
    VeraidUserId,
    is_valid_domain_name,
    parse_veraid_user_id,
)

__all__ = [
    "ACCOUNT_CREATION",
    "ACCOUNT_REQUEST",
    "ALL_CONTENT_TYPES",
    "CONNECTION_PARAMS",
    "CONNECTION_PARAMS_REQUEST",
    "CONTACT_PAIRING_AUTHORISATION",
    "CONTACT_PAIRING_FAILURE",
    "CONTACT_PAIRING_REQUEST",
    "MAX_DOMAIN_NAME_LENGTH",
    "MAX_REQUESTED_NAME_BYTES",
    "MISCONFIGURED_INTERNET_ENDPOINT",
    "PAIRING_AUTH",
    "PAIRING_AUTH_TMP",
    "PAIRING_COMPLETION_TMP",
    "PAIRING_MATCH_TMP",
    "PAIRING_REQUEST_TMP",
    "ConnectionParamsRequest",
    "InvalidVeraidId",
    "LegacyPairingRequest",
    "LetroProtocolError",
    "MalformedConnectionParamsRequest",
    "MalformedPairingRequest",
    "VeraidUserId",
    "is_valid_domain_name",
    "parse_connection_params_request",
    "parse_pairing_request",
    "parse_veraid_user_id",
    "serialise_pairing_match",
]
