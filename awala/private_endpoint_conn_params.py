"""Awala ``PrivateEndpointConnParams``: the connection parameters one endpoint grants another.

Letro agents forward these through the server to authorise a contact. The server reads only
what it needs to route them, and proves what it reads: the granter is the identity key, which
must have signed the delivery authorisation (PDA) and be its authority; the grantee is the
PDA's subject. Schema as in relaynet-core 1.88, all tags IMPLICIT::

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from asn1crypto import core, keys, x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from awala.errors import AwalaError

# Bounds on the work one message can cause. The Awala PKI is at most three CAs deep above a
# PDA (the granter's certificate, its private gateway's and that gateway's Internet
# gateway's); Letro for Android sends two. A certificate with an 8192-bit key is under 3 KiB.
MAX_CERTIFICATE_AUTHORITIES = 3
MAX_CERTIFICATE_LENGTH = 8 * 1024
MAX_CONNECTION_PARAMS_LENGTH = (1 + MAX_CERTIFICATE_AUTHORITIES) * MAX_CERTIFICATE_LENGTH + 4096
# Agents make 2048-bit keys with the exponent 65537; the bounds keep the one RSA verification
# per message cheap (its cost grows with the modulus squared times the exponent's length).
MAX_IDENTITY_KEY_BITS = 8192
MAX_PUBLIC_EXPONENT_BITS = 32


class InvalidPrivateEndpointConnParams(AwalaError):
    """The bytes are not usable ``PrivateEndpointConnParams``."""


class OversizedConnectionParams(InvalidPrivateEndpointConnParams):
    """The parameters exceed a bound that keeps checking them cheap."""


class UnprovenGranter(InvalidPrivateEndpointConnParams):
    """Nothing proves that the identity key granted the delivery authorisation."""


class UnsupportedSignatureAlgorithm(UnprovenGranter):
    """The PDA is not signed the way Awala implementations sign (RSA-PSS, SHA-2)."""


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

    granter_id: str  # the identity key's endpoint id, proven by the PDA's signature
    grantee_id: str


@dataclass(frozen=True, slots=True)
class _Pda:
    """What the checks need from the parameters, as plain values."""

    identity_key: bytes  # SubjectPublicKeyInfo DER
    subject_key: bytes  # SubjectPublicKeyInfo DER
    authority_key_id: bytes | None
    signed_bytes: bytes  # the TBSCertificate exactly as received
    signature: bytes
    algorithm: Mapping[str, Any]  # the outer AlgorithmIdentifier, asn1crypto's native form
    algorithms_agree: bool  # the TBSCertificate names the same algorithm as the outer one


_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, UnicodeError)

_PSS_HASHES: Mapping[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def endpoint_id_of_key(spki_der: bytes) -> str:
    """``"0"`` + hex SHA-256 of an RSA key's canonical SubjectPublicKeyInfo.

    Raises:
        InvalidPrivateEndpointConnParams: if the bytes are not an RSA public key.
    """
    return _endpoint_id(_rsa_key(spki_der))


def read_connection_params(der: bytes) -> ConnectionParamsRouting:
    """Check ``der`` is ``PrivateEndpointConnParams`` and say who granted it to whom.

    The whole structure is parsed (the identity key must be RSA, as relaynet-core requires
    when it deserialises). The granter is proven: the PDA's authority key identifier must be
    the identity key's and the identity key must have signed the PDA (one RSA verification).
    The CA certificates are not checked: routing needs only the granter and the grantee.

    Raises:
        OversizedConnectionParams: beyond the ``MAX_*`` bounds of this module.
        UnprovenGranter: the PDA is not the identity key's (``UnsupportedSignatureAlgorithm``
            when it is not signed as Awala implementations sign).
        InvalidPrivateEndpointConnParams: whatever else is wrong; nothing else escapes.
    """
    if len(der) > MAX_CONNECTION_PARAMS_LENGTH:
        raise OversizedConnectionParams(
            f"The connection params have {len(der)} octets (at most "
            f"{MAX_CONNECTION_PARAMS_LENGTH} allowed)"
        )
    pda = _read_pda(der)
    identity_key = _identity_key(pda.identity_key)
    granter_id = _endpoint_id(identity_key)
    _check_authority(pda.authority_key_id, granter_id)
    _verify_signature(pda, identity_key)
    return ConnectionParamsRouting(
        granter_id=granter_id, grantee_id=endpoint_id_of_key(pda.subject_key)
    )


def _read_pda(der: bytes) -> _Pda:
    try:
        params = _PrivateEndpointConnParams.load(der, strict=True)
        _check_certificate_sizes(params["delivery_auth"])
        params.native  # noqa: B018 -- parses every field, so damage anywhere is caught here
        pda = params["delivery_auth"]["leaf"]
        tbs = pda["tbs_certificate"]
        return _Pda(
            identity_key=params["identity_key"].untag().dump(),
            subject_key=tbs["subject_public_key_info"].dump(),
            authority_key_id=pda.authority_key_identifier,
            signed_bytes=tbs.dump(),
            signature=pda["signature_value"].native,
            algorithm=pda["signature_algorithm"].native,
            algorithms_agree=tbs["signature"].dump() == pda["signature_algorithm"].dump(),
        )
    except _ASN1_ERRORS as error:
        raise InvalidPrivateEndpointConnParams(
            f"Malformed PrivateEndpointConnParams ({type(error).__name__}: {str(error)[:100]})"
        ) from None


def _check_certificate_sizes(path: _CertificationPath) -> None:
    # Before the full parse, so that its cost is bounded by what routing can use.
    if isinstance(path, core.Void) or isinstance(path["leaf"], core.Void):
        raise InvalidPrivateEndpointConnParams(
            "The connection params have no delivery authorisation"
        )
    leaf, authorities = path["leaf"], path["certificate_authorities"]
    if len(authorities) > MAX_CERTIFICATE_AUTHORITIES:
        raise OversizedConnectionParams(
            f"The PDA's path has {len(authorities)} CA certificates (at most "
            f"{MAX_CERTIFICATE_AUTHORITIES} allowed)"
        )
    for certificate in [leaf, *authorities]:
        if len(certificate.dump()) > MAX_CERTIFICATE_LENGTH:
            raise OversizedConnectionParams(
                f"A certificate in the PDA's path has {len(certificate.dump())} octets (at most "
                f"{MAX_CERTIFICATE_LENGTH} allowed)"
            )


def _rsa_key(spki_der: bytes) -> rsa.RSAPublicKey:
    try:
        key = load_der_public_key(spki_der)
    except (ValueError, TypeError) as error:
        raise InvalidPrivateEndpointConnParams(f"Unreadable public key: {error}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidPrivateEndpointConnParams(f"The key is not RSA ({type(key).__name__})")
    return key


def _endpoint_id(key: rsa.RSAPublicKey) -> str:
    canonical = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "0" + hashlib.sha256(canonical).hexdigest()


def _identity_key(spki_der: bytes) -> rsa.RSAPublicKey:
    key = _rsa_key(spki_der)
    if key.key_size > MAX_IDENTITY_KEY_BITS:
        raise OversizedConnectionParams(
            f"The identity key has {key.key_size} bits (at most {MAX_IDENTITY_KEY_BITS} allowed)"
        )
    exponent_bits = key.public_numbers().e.bit_length()
    if exponent_bits > MAX_PUBLIC_EXPONENT_BITS:
        raise OversizedConnectionParams(
            f"The identity key's exponent has {exponent_bits} bits (at most "
            f"{MAX_PUBLIC_EXPONENT_BITS} allowed)"
        )
    return key


def _check_authority(authority_key_id: bytes | None, granter_id: str) -> None:
    # relaynet-core and awala-jvm set the AKI to the SHA-256 of the issuer's key, so it names
    # the issuer's endpoint id; the gateways and the grantee rely on it.
    if authority_key_id is None:
        raise UnprovenGranter("The PDA has no authority key identifier")
    authority_id = "0" + authority_key_id.hex()
    if authority_id != granter_id:
        raise UnprovenGranter(
            f"The PDA's authority ({authority_id[:70]}) is not the identity key ({granter_id})"
        )


def _verify_signature(pda: _Pda, identity_key: rsa.RSAPublicKey) -> None:
    if not pda.algorithms_agree:
        raise UnsupportedSignatureAlgorithm(
            "The PDA's signature algorithm differs from the one its signed part names"
        )
    pss, digest = _pss_parameters(pda.algorithm)
    try:
        identity_key.verify(pda.signature, pda.signed_bytes, pss, digest)
    except InvalidSignature:
        raise UnprovenGranter("The PDA is not signed by the identity key") from None


def _pss_parameters(algorithm: Mapping[str, Any]) -> tuple[padding.PSS, hashes.HashAlgorithm]:
    """Accept exactly what relaynet-core (pkijs) and awala-jvm (Bouncy Castle) produce.

    Both sign certificates with RSA-PSS: relaynet-core with the hash the RSA key was generated
    for (SHA-256 by default, or SHA-384/SHA-512), awala-jvm with SHA-256; MGF1 uses that same
    hash and the salt is as long as the digest.
    """
    name = algorithm.get("algorithm")
    parameters = algorithm.get("parameters")
    if name != "rsassa_pss":
        raise UnsupportedSignatureAlgorithm(f"The PDA is not signed with RSA-PSS ({name})")
    if not isinstance(parameters, Mapping):
        raise UnsupportedSignatureAlgorithm("The PDA's RSA-PSS signature has no parameters")
    # asn1crypto fills in the schema's defaults (SHA-1, MGF1-SHA-1, salt 20) for absent fields.
    hash_name = str(parameters["hash_algorithm"]["algorithm"])
    mgf = parameters["mask_gen_algorithm"]
    mgf_hash = mgf["parameters"]
    mgf_hash_name = mgf_hash.get("algorithm") if isinstance(mgf_hash, Mapping) else None
    hash_type = _PSS_HASHES.get(hash_name)
    if hash_type is None:
        raise UnsupportedSignatureAlgorithm(f"Unsupported RSA-PSS hash ({hash_name})")
    digest = hash_type()
    if mgf["algorithm"] != "mgf1" or mgf_hash_name != hash_name:
        raise UnsupportedSignatureAlgorithm(
            f"Unsupported RSA-PSS mask generation ({mgf['algorithm']} with {mgf_hash_name})"
        )
    salt_length = parameters["salt_length"]
    if salt_length != digest.digest_size or parameters["trailer_field"] != "trailer_field_bc":
        raise UnsupportedSignatureAlgorithm(
            f"Unsupported RSA-PSS salt length ({salt_length}) or trailer field"
        )
    return padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size), digest
