"""Account requests as Letro agents build them, signed with each supported key type.

The RSA-PSS request builders live in :mod:`infra.agents` (the benchmarks use them too) and
are re-exported here; the other key types and the bundle check only the tests need.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from infra.agents import Signer, build_request, pss_request, pss_signer, pss_spki

__all__ = [
    "SERVICE_OID",
    "PrivateKey",
    "Signer",
    "build_request",
    "bundle_member_key_matches",
    "pkcs1_signer",
    "pss_request",
    "pss_signer",
    "pss_spki",
    "spki",
]

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey


def spki(key: PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def pkcs1_signer(key: rsa.RSAPrivateKey) -> Signer:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


SERVICE_OID = "1.3.6.1.4.1.58708.2.0"


def bundle_member_key_matches(bundle: bytes, request_spki: bytes) -> bool:
    """Whether the member certificate in ``bundle`` certifies the key of ``request_spki``.

    Compared as key material: an RSA-PSS SPKI and the certificate's rsaEncryption SPKI hold
    the same modulus and exponent.
    """
    from cryptography import x509

    from veraid._asn1 import MemberIdBundle, der_from_implicit

    decoded = MemberIdBundle.load(bundle)
    certificate = x509.load_der_x509_certificate(der_from_implicit(decoded["member_certificate"]))
    certified = certificate.public_key()
    requested = serialization.load_der_public_key(request_spki)
    if isinstance(certified, rsa.RSAPublicKey) and isinstance(requested, rsa.RSAPublicKey):
        return certified.public_numbers() == requested.public_numbers()
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    if isinstance(certified, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and isinstance(
        requested, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
    ):
        return certified.public_bytes(*raw) == requested.public_bytes(*raw)
    return False
