"""Awala ``NodeConnectionParams``: how to reach an Awala Internet endpoint, in DER.

An Internet endpoint serves these at ``https://<host>:<port>/connection-params.der``
(``<host>:<port>`` from its ``_awala-pdc._tcp`` SRV record), with the content type
``application/vnd.etsi.tsl.der``. The structure is the one ``@relaycorp/relaynet-core``
builds with ``makeImplicitlyTaggedSequence`` (``src/lib/nodes/NodeConnectionParams.ts``)::

    NodeConnectionParams ::= SEQUENCE {
        internetAddress [0] IMPLICIT VisibleString,
        identityKey     [1] IMPLICIT OCTET STRING,   -- DER SubjectPublicKeyInfo, RSA
        sessionKey      [2] IMPLICIT SEQUENCE {
            keyId     [0] IMPLICIT OCTET STRING,
            publicKey [1] IMPLICIT OCTET STRING      -- DER SubjectPublicKeyInfo, EC (ECDH)
        }
    }

Decoding is strict: the input must be exactly one DER value (no trailing bytes, no BER
such as indefinite lengths), and both keys must be SubjectPublicKeyInfo structures of the
algorithm relaynet-core itself accepts when it deserialises them. Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from asn1crypto import core, keys

from awala.errors import InvalidConnectionParams

# The content type an Internet endpoint serves the DER with (sic: it is not a TSL).
CONNECTION_PARAMS_CONTENT_TYPE: Final = "application/vnd.etsi.tsl.der"

# Everything asn1crypto raises on malformed input; it has no error hierarchy of its own.
_ASN1_ERRORS: Final = (ValueError, TypeError, KeyError, IndexError, OverflowError)


class _SessionKeySchema(core.Sequence):
    """relaynet-core ``SessionKey`` inside NodeConnectionParams (keys as OCTET STRINGs)."""

    _fields = [  # noqa: RUF012 (asn1crypto's declarative schema)
        ("key_id", core.OctetString, {"implicit": 0}),
        ("public_key", core.OctetString, {"implicit": 1}),
    ]


class _NodeConnectionParamsSchema(core.Sequence):
    """relaynet-core ``NodeConnectionParams.SCHEMA``, every field implicitly tagged."""

    _fields = [  # noqa: RUF012 (asn1crypto's declarative schema)
        ("internet_address", core.VisibleString, {"implicit": 0}),
        ("identity_key", core.OctetString, {"implicit": 1}),
        ("session_key", _SessionKeySchema, {"implicit": 2}),
    ]


@dataclass(frozen=True, slots=True)
class SessionKey:
    """An endpoint's initial (ECDH) session key: its id and its DER SubjectPublicKeyInfo."""

    key_id: bytes
    public_key: bytes


@dataclass(frozen=True, slots=True)
class NodeConnectionParams:
    """The connection parameters of an Awala Internet endpoint.

    Attributes:
        internet_address: The endpoint's Internet address, e.g. ``example.com``.
        identity_key: The DER SubjectPublicKeyInfo of its RSA identity key.
        session_key: Its initial session key.
    """

    internet_address: str
    identity_key: bytes
    session_key: SessionKey


def parse_node_connection_params(der: bytes) -> NodeConnectionParams:
    """Decode and check DER-encoded ``NodeConnectionParams``.

    Raises:
        InvalidConnectionParams: for any input that is not valid connection parameters.
            No other exception escapes, whatever the bytes.
    """
    try:
        parsed = _NodeConnectionParamsSchema.load(der, strict=True)
        internet_address = parsed["internet_address"].native
        identity_key = parsed["identity_key"].native
        session_key = parsed["session_key"]
        key_id = session_key["key_id"].native
        session_public_key = session_key["public_key"].native
        # asn1crypto also accepts BER (indefinite or long-form lengths, constructed
        # strings); re-encoding and comparing keeps exactly the DER spelling.
        reencoded = parsed.dump(force=True)
    except _ASN1_ERRORS as error:
        raise InvalidConnectionParams(
            f"Connection parameters are not valid DER: {error}"
        ) from error
    if reencoded != der:
        raise InvalidConnectionParams("Connection parameters are not in canonical DER")
    if not isinstance(internet_address, str) or not internet_address:
        raise InvalidConnectionParams("Connection parameters have an empty Internet address")
    if not key_id:
        raise InvalidConnectionParams("Connection parameters have an empty session key id")
    _check_public_key(identity_key, "rsa", "identity key")
    _check_public_key(session_public_key, "ec", "session key")
    return NodeConnectionParams(
        internet_address=internet_address,
        identity_key=identity_key,
        session_key=SessionKey(key_id=key_id, public_key=session_public_key),
    )


def serialise_node_connection_params(params: NodeConnectionParams) -> bytes:
    """Encode ``params`` in DER, as relaynet-core's ``NodeConnectionParams.serialize()``."""
    encoder = _NodeConnectionParamsSchema(
        {
            "internet_address": params.internet_address,
            "identity_key": params.identity_key,
            "session_key": {
                "key_id": params.session_key.key_id,
                "public_key": params.session_key.public_key,
            },
        }
    )
    return bytes(encoder.dump())


def _check_public_key(der: object, algorithm: str, what: str) -> None:
    if not isinstance(der, bytes):
        raise InvalidConnectionParams(f"The {what} is missing")
    try:
        info = keys.PublicKeyInfo.load(der, strict=True)
        actual = info["algorithm"]["algorithm"].native
        info.native  # noqa: B018 (decoding every part, the RSA key's integers included, is the check)
        reencoded = info.dump(force=True)
    except _ASN1_ERRORS as error:
        raise InvalidConnectionParams(
            f"The {what} is not a DER SubjectPublicKeyInfo: {error}"
        ) from error
    if reencoded != der:
        raise InvalidConnectionParams(f"The {what} is not in canonical DER")
    if actual != algorithm:
        raise InvalidConnectionParams(f"The {what} is a {actual} key, not {algorithm}")
