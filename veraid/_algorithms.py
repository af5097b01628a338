"""Signature algorithms: from an AlgorithmIdentifier to the padding and hash to verify with.

Shared by CMS signatures and certificate signatures, whose errors differ: each caller passes
the VeraidError subclass to raise.
"""

from __future__ import annotations

from asn1crypto import algos
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from veraid._errors import VeraidError

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

# What every VeraId implementation signs with: RSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt.
RSA_PSS_SHA256 = algos.SignedDigestAlgorithm(
    {
        "algorithm": "rsassa_pss",
        "parameters": {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
            "salt_length": 32,
        },
    }
).dump()


def hash_algorithm(name: str, error: type[VeraidError]) -> hashes.HashAlgorithm:
    if name not in _HASHES:
        raise error(f"Unsupported digest algorithm ({name})")
    return _HASHES[name]()


def signature_scheme(
    algorithm: algos.SignedDigestAlgorithm, error: type[VeraidError]
) -> tuple[padding.AsymmetricPadding, hashes.HashAlgorithm]:
    """RSA-PSS with its parameters honoured, or PKCS#1 v1.5; SHA-256, -384 or -512.

    asn1crypto parses lazily: call inside ``except ASN1_ERRORS``.
    """
    if algorithm.dump() == RSA_PSS_SHA256:
        return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()
    name = algorithm["algorithm"].native
    if name == "rsassa_pss":
        params = algorithm["parameters"]
        hash_name = params["hash_algorithm"]["algorithm"].native
        mgf = params["mask_gen_algorithm"]
        if (
            mgf["algorithm"].native != "mgf1"
            or params["trailer_field"].native != "trailer_field_bc"
        ):
            raise error("Unsupported RSA-PSS parameters")
        mgf_hash = hash_algorithm(mgf["parameters"]["algorithm"].native, error)
        salt = params["salt_length"].native
        return (
            padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=salt),
            hash_algorithm(hash_name, error),
        )
    if name in ("sha256_rsa", "sha384_rsa", "sha512_rsa"):
        return padding.PKCS1v15(), hash_algorithm(name.split("_")[0], error)
    raise error(f"Unsupported signature algorithm ({name})")
