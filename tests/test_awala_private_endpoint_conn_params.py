"""``awala.private_endpoint_conn_params``: the granter of a pairing authorisation is proven.

Parameters come from ``@relaycorp/relaynet-core``
(``tests/interop/private_endpoint_conn_params.mjs``) and from ``infra.agents``;
variants are re-signed here with the real keys, so each is refused for the one reason it is
built to show.
"""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import pytest
from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from awala.private_endpoint_conn_params import (
    MAX_CERTIFICATE_AUTHORITIES,
    MAX_CERTIFICATE_LENGTH,
    MAX_CONNECTION_PARAMS_LENGTH,
    ConnectionParamsRouting,
    InvalidPrivateEndpointConnParams,
    OversizedConnectionParams,
    UnprovenGranter,
    UnsupportedSignatureAlgorithm,
    read_connection_params,
)
from infra.agents import (
    assemble_connection_params,
    connection_params,
    endpoint_id,
    issue_certificate,
    new_rsa_key,
    spki,
)
from tests.relaynet import RELAYNET_CORE_DIR
from tests.test_cloudevents_interop import INTEROP_DIR, requires_node

GRANTER, GRANTEE, MALLORY = new_rsa_key(), new_rsa_key(), new_rsa_key()
GENUINE = ConnectionParamsRouting(granter_id=endpoint_id(GRANTER), grantee_id=endpoint_id(GRANTEE))
GRANTER_CERTIFICATE = issue_certificate(GRANTER, GRANTER)

# --- relaynet-core -----------------------------------------------------------------------------

GENUINE_CASES: dict[str, dict[str, Any]] = {
    "default (RSA-PSS, SHA-256)": {},
    "chained to a private gateway, as on Android": {"viaGateway": True},
    "SHA-384 key": {"hashingAlgorithm": "SHA-384"},
    "SHA-512 key": {"hashingAlgorithm": "SHA-512"},
    "4096-bit key": {"modulus": 4096},
}
FORGED_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "PDA signed by Mallory": (
        {"forgery": "signedByMallory"},
        "The PDA is not signed by the identity key",
    ),
    "Mallory's identity key, PDA naming the granter": (
        {"forgery": "malloryIdentityKey"},
        "is not the identity key",
    ),
}


@pytest.fixture(scope="module")
def relaynet_core() -> dict[str, dict[str, Any]]:
    """Every case above, made by relaynet-core in one Node run."""
    node = requires_node(RELAYNET_CORE_DIR)
    names = [*GENUINE_CASES, *FORGED_CASES]
    cases = [*GENUINE_CASES.values(), *(case for case, _ in FORGED_CASES.values())]
    completed = subprocess.run(
        [node, str(INTEROP_DIR / "private_endpoint_conn_params.mjs")],
        input=json.dumps({"cases": cases}).encode(),
        capture_output=True,
        cwd=INTEROP_DIR,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"relaynet-core failed: {completed.stdout!r} {completed.stderr!r}")
    return dict(zip(names, json.loads(completed.stdout), strict=True))


@pytest.mark.parametrize("case", GENUINE_CASES)
def test_relaynet_core_params_prove_their_granter(
    relaynet_core: dict[str, dict[str, Any]], case: str
) -> None:
    made = relaynet_core[case]

    routing = read_connection_params(base64.b64decode(made["params_base64"]))

    assert routing == ConnectionParamsRouting(
        granter_id=made["granter_id"], grantee_id=made["grantee_id"]
    )


@pytest.mark.parametrize("case", FORGED_CASES)
def test_relaynet_core_forgeries_are_refused(
    relaynet_core: dict[str, dict[str, Any]], case: str
) -> None:
    made, (_, reason) = relaynet_core[case], FORGED_CASES[case]

    with pytest.raises(UnprovenGranter, match=reason):
        read_connection_params(base64.b64decode(made["params_base64"]))


# --- who signed, who is the authority ----------------------------------------------------------


def test_params_signed_by_the_identity_key_name_it_as_granter() -> None:
    assert read_connection_params(connection_params(GRANTER, GRANTEE)) == GENUINE


def test_pda_signed_by_another_key_is_refused() -> None:
    forged = connection_params(GRANTER, GRANTEE, signer=MALLORY)

    with pytest.raises(UnprovenGranter, match=r"^The PDA is not signed by the identity key$"):
        read_connection_params(forged)


def test_identity_key_that_is_not_the_pdas_authority_is_refused() -> None:
    # Mallory signs with her own key, names it as the identity key, and claims the granter's
    # authority: the signature checks out, the authority does not.
    forged = connection_params(GRANTER, GRANTEE, identity_key=MALLORY, signer=MALLORY)

    with pytest.raises(UnprovenGranter, match=f"is not the identity key \\({endpoint_id(MALLORY)}"):
        read_connection_params(forged)


def test_identity_key_of_someone_else_is_refused() -> None:
    # The granter's genuine PDA with Mallory's key attached: an authority mismatch.
    with pytest.raises(UnprovenGranter, match=f"^The PDA's authority \\({endpoint_id(GRANTER)}"):
        read_connection_params(connection_params(GRANTER, GRANTEE, identity_key=MALLORY))


def test_pda_without_authority_key_identifier_is_refused() -> None:
    params = connection_params(GRANTER, GRANTEE, authority_key_id=False)

    with pytest.raises(UnprovenGranter, match="no authority key identifier"):
        read_connection_params(params)


def test_errors_are_connection_params_errors() -> None:
    # The ingress turns this base class into a log line and no output.
    assert issubclass(UnprovenGranter, InvalidPrivateEndpointConnParams)
    assert issubclass(UnsupportedSignatureAlgorithm, UnprovenGranter)
    assert issubclass(OversizedConnectionParams, InvalidPrivateEndpointConnParams)


# --- signature algorithms ----------------------------------------------------------------------


def _pss_algorithm(hash_name: str, mgf_hash: str, salt_length: int) -> dict[str, Any]:
    return {
        "algorithm": "rsassa_pss",
        "parameters": {
            "hash_algorithm": {"algorithm": hash_name},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": mgf_hash}},
            "salt_length": salt_length,
        },
    }


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _resigned_pda(
    algorithm: dict[str, Any],
    sign: padding.AsymmetricPadding,
    digest: str,
    *,
    inner_algorithm: dict[str, Any] | None = None,
) -> bytes:
    """The granter's PDA, declaring ``algorithm`` and genuinely signed with ``sign``."""
    pda = asn1_x509.Certificate.load(issue_certificate(GRANTEE, GRANTER))
    tbs = pda["tbs_certificate"]
    tbs["signature"] = algos.SignedDigestAlgorithm(inner_algorithm or algorithm)
    signed = tbs.dump(force=True)
    resigned = asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(signed),
            "signature_algorithm": algos.SignedDigestAlgorithm(algorithm),
            "signature_value": GRANTER.sign(signed, sign, _HASHES[digest]()),
        }
    )
    der: bytes = resigned.dump()
    return der


def _params_with_pda(pda: bytes) -> bytes:
    return assemble_connection_params(spki(GRANTER), pda, [GRANTER_CERTIFICATE])


def _pss(mgf_hash: str, salt_length: int) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(_HASHES[mgf_hash]()), salt_length=salt_length)


@pytest.mark.parametrize(("hash_name", "salt_length"), [("sha384", 48), ("sha512", 64)])
def test_pss_with_the_hashes_relaynet_core_offers_is_accepted(
    hash_name: str, salt_length: int
) -> None:
    pda = _resigned_pda(
        _pss_algorithm(hash_name, hash_name, salt_length), _pss(hash_name, salt_length), hash_name
    )

    assert read_connection_params(_params_with_pda(pda)) == GENUINE


UNSUPPORTED: dict[str, tuple[dict[str, Any], padding.AsymmetricPadding, str, str]] = {
    "PKCS#1 v1.5": (
        {"algorithm": "sha256_rsa", "parameters": None},
        padding.PKCS1v15(),
        "sha256",
        r"not signed with RSA-PSS \(sha256_rsa\)",
    ),
    "RSA-PSS without parameters (SHA-1)": (
        {"algorithm": "rsassa_pss"},
        _pss("sha1", 20),
        "sha1",
        "RSA-PSS signature has no parameters",
    ),
    "RSA-PSS with SHA-1": (
        _pss_algorithm("sha1", "sha1", 20),
        _pss("sha1", 20),
        "sha1",
        r"Unsupported RSA-PSS hash \(sha1\)",
    ),
    "RSA-PSS, MGF1 with another hash": (
        _pss_algorithm("sha256", "sha512", 32),
        _pss("sha512", 32),
        "sha256",
        r"mask generation \(mgf1 with sha512\)",
    ),
    "RSA-PSS, salt shorter than the digest": (
        _pss_algorithm("sha256", "sha256", 20),
        _pss("sha256", 20),
        "sha256",
        r"salt length \(20\)",
    ),
}


@pytest.mark.parametrize("case", UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_signatures_agents_do_not_make_are_refused(
    case: tuple[dict[str, Any], padding.AsymmetricPadding, str, str],
) -> None:
    algorithm, sign, digest, reason = case
    # Genuinely signed by the granter: refused for how, not by whom.
    params = _params_with_pda(_resigned_pda(algorithm, sign, digest))

    with pytest.raises(UnsupportedSignatureAlgorithm, match=reason):
        read_connection_params(params)


def test_outer_algorithm_differing_from_the_signed_one_is_refused() -> None:
    pda = _resigned_pda(
        _pss_algorithm("sha256", "sha256", 32),
        _pss("sha256", 32),
        "sha256",
        inner_algorithm={"algorithm": "sha256_rsa", "parameters": None},
    )

    with pytest.raises(UnsupportedSignatureAlgorithm, match="differs from the one its signed"):
        read_connection_params(_params_with_pda(pda))


def test_salt_length_is_checked_against_the_signature() -> None:
    # Declares the 32-octet salt agents use, but the signature was made with a 20-octet one.
    pda = _resigned_pda(_pss_algorithm("sha256", "sha256", 32), _pss("sha256", 20), "sha256")

    with pytest.raises(UnprovenGranter, match="not signed by the identity key"):
        read_connection_params(_params_with_pda(pda))


def test_signature_covers_the_tbs_bytes_as_received() -> None:
    # One flipped bit in the grantee's modulus: still a key, no longer the one signed for.
    pda = bytearray(issue_certificate(GRANTEE, GRANTER))
    pda[pda.index(spki(GRANTEE)) + 40] ^= 0x01

    with pytest.raises(UnprovenGranter, match="not signed by the identity key"):
        read_connection_params(_params_with_pda(bytes(pda)))


# --- bounds ------------------------------------------------------------------------------------


def test_the_awala_pki_depth_of_certificate_authorities_is_accepted() -> None:
    pda = issue_certificate(GRANTEE, GRANTER)
    params = assemble_connection_params(
        spki(GRANTER), pda, [GRANTER_CERTIFICATE] * MAX_CERTIFICATE_AUTHORITIES
    )

    assert read_connection_params(params) == GENUINE


def test_more_certificate_authorities_are_refused() -> None:
    pda = issue_certificate(GRANTEE, GRANTER)
    params = assemble_connection_params(
        spki(GRANTER), pda, [GRANTER_CERTIFICATE] * (MAX_CERTIFICATE_AUTHORITIES + 1)
    )

    with pytest.raises(OversizedConnectionParams, match="4 CA certificates"):
        read_connection_params(params)


def test_oversized_certificate_authority_is_refused() -> None:
    padding_extension = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.58708.99"), b"\x04\x82\x20\x00" + bytes(0x2000)
    )
    big = x509.load_der_x509_certificate(GRANTER_CERTIFICATE)
    builder = (
        x509.CertificateBuilder()
        .subject_name(big.subject)
        .issuer_name(big.issuer)
        .public_key(GRANTER.public_key())
        .serial_number(1)
        .not_valid_before(big.not_valid_before_utc)
        .not_valid_after(big.not_valid_after_utc)
        .add_extension(padding_extension, critical=False)
    )
    oversized = builder.sign(GRANTER, hashes.SHA256()).public_bytes(Encoding.DER)
    assert len(oversized) > MAX_CERTIFICATE_LENGTH
    params = assemble_connection_params(
        spki(GRANTER), issue_certificate(GRANTEE, GRANTER), [oversized]
    )

    with pytest.raises(OversizedConnectionParams, match="A certificate in the PDA's path"):
        read_connection_params(params)


def test_oversized_input_is_refused_before_parsing() -> None:
    with pytest.raises(OversizedConnectionParams, match="octets"):
        read_connection_params(bytes(MAX_CONNECTION_PARAMS_LENGTH + 1))


def _public_key_spki(exponent: int, modulus: int) -> bytes:
    key = rsa.RSAPublicNumbers(exponent, modulus).public_key()
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _params_with_identity(identity_spki: bytes) -> bytes:
    # The key's size is checked before anything is computed with it, so the PDA's authority
    # (the granter's, not this key's) never comes into question.
    pda = issue_certificate(GRANTEE, GRANTER)
    return assemble_connection_params(identity_spki, pda, [GRANTER_CERTIFICATE])


def test_identity_key_beyond_the_size_bound_is_refused() -> None:
    modulus = (1 << 8999) | 1 | (1 << 4000)  # 9000 bits, odd: enough to be read as a key
    params = _params_with_identity(_public_key_spki(65537, modulus))

    with pytest.raises(OversizedConnectionParams, match="identity key has 9000 bits"):
        read_connection_params(params)


def test_identity_key_with_a_huge_exponent_is_refused() -> None:
    modulus = GRANTER.public_key().public_numbers().n
    params = _params_with_identity(_public_key_spki((1 << 64) + 1, modulus))

    with pytest.raises(OversizedConnectionParams, match="exponent has 65 bits"):
        read_connection_params(params)
