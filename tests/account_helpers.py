"""Account requests as Letro agents build them, signed with each supported key type."""

from __future__ import annotations

from collections.abc import Callable

from asn1crypto import algos, keys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from letro.account_messages import serialise_account_request, serialise_account_request_signature

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def spki(key: PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def pss_spki(key: rsa.RSAPrivateKey, hash_name: str = "sha256", salt: int = 32) -> bytes:
    """An id-RSASSA-PSS SubjectPublicKeyInfo with parameters, as Letro for Android encodes it."""
    plain = keys.PublicKeyInfo.load(spki(key))
    params = algos.RSASSAPSSParams(
        {
            "hash_algorithm": {"algorithm": hash_name},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": hash_name}},
            "salt_length": salt,
            "trailer_field": 1,
        }
    )
    info = keys.PublicKeyInfo(
        {
            "algorithm": keys.PublicKeyAlgorithm({"algorithm": "rsassa_pss", "parameters": params}),
            "public_key": plain["public_key"].copy(),
        }
    )
    encoded: bytes = info.dump()
    return encoded


Signer = Callable[[bytes], bytes]


def pss_signer(key: rsa.RSAPrivateKey, hash_name: str = "sha256", salt: int = 32) -> Signer:
    h = _HASHES[hash_name]
    return lambda data: key.sign(data, padding.PSS(padding.MGF1(h()), salt), h())


def pkcs1_signer(key: rsa.RSAPrivateKey) -> Signer:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def build_request(user_name: str, locale: str, public_key_der: bytes, sign: Signer) -> bytes:
    request = serialise_account_request(user_name, locale, public_key_der)
    return serialise_account_request_signature(request, sign(request))


def pss_request(
    user_name: str, locale: str = "en-us", key: rsa.RSAPrivateKey | None = None
) -> tuple[bytes, rsa.RSAPrivateKey]:
    """A request like Letro for Android's: RSA-2048, RSA-PSS SPKI with SHA-256 parameters."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return build_request(user_name, locale, pss_spki(key), pss_signer(key)), key


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
