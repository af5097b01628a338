"""Content types of the Awala service messages that Letro agents and this server exchange.

Each constant is the exact string carried in the CloudEvent ``datacontenttype``; the server
dispatches on exact equality, so no parameters and no case folding are involved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

_PREFIX: Final = "application/vnd.relaycorp.letro."

# Account creation: agent -> server, then server -> agent.
ACCOUNT_REQUEST: Final = _PREFIX + "account-request"
ACCOUNT_CREATION: Final = _PREFIX + "account-creation"

# Connection parameters retrieval: agent -> server, then either reply.
CONNECTION_PARAMS_REQUEST: Final = _PREFIX + "connection-params-request"
CONNECTION_PARAMS: Final = _PREFIX + "connection-params"
MISCONFIGURED_INTERNET_ENDPOINT: Final = _PREFIX + "misconfigured-internet-endpoint"

# Contact pairing with VeraId signatures; the request type is used in both directions.
CONTACT_PAIRING_REQUEST: Final = _PREFIX + "contact-pairing.request"
CONTACT_PAIRING_FAILURE: Final = _PREFIX + "contact-pairing.failure"

# Contact pairing authorisation, forwarded from granter to grantee unchanged. The published
# docs call it "contact-pairing.authorisation", but the original server and the Android
# client use this one.
PAIRING_AUTH: Final = _PREFIX + "pairing-auth"
CONTACT_PAIRING_AUTHORISATION: Final = _PREFIX + "contact-pairing.authorisation"

# Legacy pairing with CSV payloads and no signatures.
PAIRING_REQUEST_TMP: Final = _PREFIX + "pairing-request-tmp"
PAIRING_MATCH_TMP: Final = _PREFIX + "pairing-match-tmp"
PAIRING_AUTH_TMP: Final = _PREFIX + "pairing-auth-tmp"
PAIRING_COMPLETION_TMP: Final = _PREFIX + "pairing-completion-tmp"

ALL_CONTENT_TYPES: Final = frozenset(
    {
        ACCOUNT_REQUEST,
        ACCOUNT_CREATION,
        CONNECTION_PARAMS_REQUEST,
        CONNECTION_PARAMS,
        MISCONFIGURED_INTERNET_ENDPOINT,
        CONTACT_PAIRING_REQUEST,
        CONTACT_PAIRING_FAILURE,
        PAIRING_AUTH,
        CONTACT_PAIRING_AUTHORISATION,
        PAIRING_REQUEST_TMP,
        PAIRING_MATCH_TMP,
        PAIRING_AUTH_TMP,
        PAIRING_COMPLETION_TMP,
    }
)

# The largest content accepted for each incoming type, near its real size with room to
# spare: anything larger is refused before it is parsed, so no input costs more than its
# type's worst case. A SignatureBundle with 4096-bit keys and a deep DNSSEC chain is about
# 16 KiB; connection params with a two-certificate path about 6 KiB; a CSV request with a
# 4096-bit key about 1.5 KiB; an account request with one about 1.5 KiB.
MAX_CONTENT_LENGTHS: Final[Mapping[str, int]] = {
    CONTACT_PAIRING_REQUEST: 32 * 1024,
    PAIRING_AUTH: 16 * 1024,
    CONTACT_PAIRING_AUTHORISATION: 16 * 1024,
    PAIRING_AUTH_TMP: 16 * 1024,
    ACCOUNT_REQUEST: 8 * 1024,
    PAIRING_REQUEST_TMP: 4 * 1024,
    CONNECTION_PARAMS_REQUEST: 1024,
}
