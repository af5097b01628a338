"""Awala ``PrivateEndpointConnParams``: the connection parameters one endpoint grants another.

Letro agents forward these through the server to authorise a contact. The server reads only
what it needs to route them: the granter (whoever issued the delivery authorisation, PDA)
and the grantee (the PDA's subject). Schema as in relaynet-core 1.88, all tags IMPLICIT::

    PrivateEndpointConnParams ::= SEQUENCE {
        identityKey            [0] SubjectPublicKeyInfo,  -- RSA
        internetGatewayAddress [1] VisibleString,
        deliveryAuth           [2] CertificationPath,
        sessionKey             [3] SessionKey OPTIONAL }
    CertificationPath ::= SEQUENCE {
        leaf [0] Certificate, certificateAuthorities [1] SET OF Certificate }
    SessionKey ::= SEQUENCE { keyId [0] OCTET STRING, publicKey [1] SubjectPublicKeyInfo }
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from asn1crypto import core, keys, x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from awala.errors import AwalaError


class InvalidPrivateEndpointConnParams(AwalaError):
    """The bytes are not usable ``PrivateEndpointConnParams``."""


class _Certificates(core.SetOf):  # type: ignore[misc]
    _child_spec = x509.Certificate


class _CertificationPath(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declarative schema
        ("leaf", x509.Certificate, {"implicit": 0}),
        ("certificate_authorities", _Certificates, {"implicit": 1}),
    ]


class _SessionKey(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declarative schema
        ("key_id", core.OctetString, {"implicit": 0}),
        ("public_key", keys.PublicKeyInfo, {"implicit": 1}),
    ]


class _PrivateEndpointConnParams(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declarative schema
        ("identity_key", keys.PublicKeyInfo, {"implicit": 0}),
        ("internet_gateway_address", core.VisibleString, {"implicit": 1}),
        ("delivery_auth", _CertificationPath, {"implicit": 2}),
        ("session_key", _SessionKey, {"implicit": 3, "optional": True}),
    ]


@dataclass(frozen=True, slots=True)
class ConnectionParamsRouting:
    """Who granted the connection parameters and who may use them."""

    granter_id: str | None  # None when the PDA has no authority key identifier
    grantee_id: str


_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, UnicodeError)


def endpoint_id_of_key(spki_der: bytes) -> str:
    """``"0"`` + hex SHA-256 of an RSA key's canonical SubjectPublicKeyInfo.

    Raises:
        InvalidPrivateEndpointConnParams: if the bytes are not an RSA public key.
    """
    try:
        key = load_der_public_key(spki_der)
    except (ValueError, TypeError) as error:
        raise InvalidPrivateEndpointConnParams(f"Unreadable public key: {error}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidPrivateEndpointConnParams(f"The key is not RSA ({type(key).__name__})")
    canonical = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "0" + hashlib.sha256(canonical).hexdigest()


def read_connection_params(der: bytes) -> ConnectionParamsRouting:
    """Check ``der`` is ``PrivateEndpointConnParams`` and say who granted it to whom.

    The whole structure is parsed (the identity key must be RSA, as relaynet-core requires
    when it deserialises), but only the PDA decides the routing.

    Raises:
        InvalidPrivateEndpointConnParams: whatever is wrong with the bytes; nothing else escapes.
    """
    try:
        params = _PrivateEndpointConnParams.load(der, strict=True)
        params.native  # noqa: B018 -- parses every field, so damage anywhere is caught here
        identity_key = params["identity_key"].untag().dump()
        pda = params["delivery_auth"]["leaf"]
        if isinstance(pda, core.Void):
            raise InvalidPrivateEndpointConnParams(
                "The connection params have no delivery authorisation"
            )
        subject_key = pda["tbs_certificate"]["subject_public_key_info"].dump()
        key_identifier = pda.authority_key_identifier
    except _ASN1_ERRORS as error:
        raise InvalidPrivateEndpointConnParams(
            f"Malformed PrivateEndpointConnParams ({type(error).__name__}: {str(error)[:100]})"
        ) from None
    endpoint_id_of_key(identity_key)  # only RSA identity keys are valid
    grantee_id = endpoint_id_of_key(subject_key)
    granter_id = None if key_identifier is None else "0" + key_identifier.hex()
    return ConnectionParamsRouting(granter_id=granter_id, grantee_id=grantee_id)
