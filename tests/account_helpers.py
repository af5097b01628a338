"""Account requests as Letro agents build them, signed with each supported key type.

The RSA-PSS encoding of Letro for Android and the bundle check live in ``infra.agents``,
with the simulated agents that use them; they are re-exported here for the tests.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from infra.agents import Signer, bundle_member_key_matches, pss_signer, pss_spki
from infra.agents import build_account_request as build_request

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey

__all__ = [
    "SERVICE_OID",
    "Signer",
    "build_request",
    "bundle_member_key_matches",
    "pkcs1_signer",
    "pss_request",
    "pss_signer",
    "pss_spki",
    "spki",
]


def spki(key: PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def pkcs1_signer(key: rsa.RSAPrivateKey) -> Signer:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def pss_request(
    user_name: str, locale: str = "en-us", key: rsa.RSAPrivateKey | None = None
) -> tuple[bytes, rsa.RSAPrivateKey]:
    """A request like Letro for Android's: RSA-2048, RSA-PSS SPKI with SHA-256 parameters."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return build_request(user_name, locale, pss_spki(key), pss_signer(key)), key


SERVICE_OID = "1.3.6.1.4.1.58708.2.0"
