"""AccountRequestSignature and AccountCreation: DER vectors, strict decoding, signatures."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

import veraid._limits
import veraid._pki
from letro.account_messages import (
    MEMBER_KEY_MAX_EXPONENT_BITS,
    MEMBER_KEY_MODULUS_BITS,
    check_member_key,
    parse_account_creation,
    parse_account_request,
    serialise_account_creation,
    serialise_account_request,
    verify_account_request,
)
from letro.errors import (
    InvalidAccountRequestSignature,
    MalformedAccountRequest,
    UnsupportedAccountKey,
    UnusableMemberKey,
)
from tests.account_helpers import (
    build_request,
    pkcs1_signer,
    pss_signer,
    pss_spki,
    spki,
)

ED25519 = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ED25519_RAW = spki(ED25519)[-32:]
RSA_2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ed25519_request(name: str = "maría", locale: str = "es-ve") -> bytes:
    return build_request(name, locale, spki(ED25519), ED25519.sign)


def test_account_request_vector() -> None:
    expected = (
        bytes.fromhex("303b80066d6172c3ad61810565732d7665a22a300506032b6570032100") + ED25519_RAW
    )
    assert serialise_account_request("maría", "es-ve", spki(ED25519)) == expected


def test_account_request_signature_vector() -> None:
    data = _ed25519_request()
    body = bytes.fromhex("80066d6172c3ad61810565732d7665a22a300506032b6570032100") + ED25519_RAW
    signature = ED25519.sign(b"\x30\x3b" + body)
    assert data == bytes.fromhex("308180a03b") + body + bytes.fromhex("814100") + signature
    parsed = parse_account_request(data)
    assert (parsed.user_name, parsed.locale) == ("maría", "es-ve")
    assert parsed.signed_bytes == b"\x30\x3b" + body
    assert parsed.public_key_der == spki(ED25519)
    verify_account_request(parsed)


def test_account_creation_vector() -> None:
    expected = bytes.fromhex(
        "302780056d61726961810565732d766582126d61726961406775617261706f2e636166658303010203"
    )
    value = serialise_account_creation("maria", "es-ve", "maria@guarapo.cafe", b"\x01\x02\x03")
    assert value == expected
    assert parse_account_creation(expected) == (
        "maria",
        "es-ve",
        "maria@guarapo.cafe",
        b"\x01\x02\x03",
    )


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
def test_rsa_pss_keys_with_parameters(hash_name: str) -> None:
    salt = {"sha256": 32, "sha384": 48, "sha512": 64}[hash_name]
    data = build_request(
        "alice", "en-us", pss_spki(RSA_2048, hash_name, salt), pss_signer(RSA_2048, hash_name, salt)
    )
    verify_account_request(parse_account_request(data))


@pytest.mark.parametrize("size", [3072, 4096])
def test_rsa_pss_larger_moduli(size: int) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=size)
    data = build_request("alice", "en-us", pss_spki(key), pss_signer(key))
    verify_account_request(parse_account_request(data))


def test_rsa_pss_hash_comes_from_the_key_parameters() -> None:
    # Signed with SHA-512 but the key says SHA-256: refused.
    data = build_request("alice", "en-us", pss_spki(RSA_2048), pss_signer(RSA_2048, "sha512"))
    with pytest.raises(InvalidAccountRequestSignature):
        verify_account_request(parse_account_request(data))


def test_plain_rsa_key_uses_pkcs1_v15_sha256() -> None:
    data = build_request("alice", "en-us", spki(RSA_2048), pkcs1_signer(RSA_2048))
    verify_account_request(parse_account_request(data))
    pss = build_request("alice", "en-us", spki(RSA_2048), pss_signer(RSA_2048))
    with pytest.raises(InvalidAccountRequestSignature):
        verify_account_request(parse_account_request(pss))


@pytest.mark.parametrize(
    "key", [ed25519.Ed25519PrivateKey.generate(), ed448.Ed448PrivateKey.generate()]
)
def test_edwards_keys(key: ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) -> None:
    verify_account_request(parse_account_request(build_request("bob", "en", spki(key), key.sign)))


def test_signature_by_another_key_is_refused() -> None:
    other = ed25519.Ed25519PrivateKey.generate()
    data = build_request("maría", "es-ve", spki(ED25519), other.sign)
    with pytest.raises(InvalidAccountRequestSignature):
        verify_account_request(parse_account_request(data))


def test_signature_over_the_tagged_request_is_refused() -> None:
    request = serialise_account_request("maría", "es-ve", spki(ED25519))
    tagged = b"\xa0" + request[1:]
    data = build_request("maría", "es-ve", spki(ED25519), lambda _: ED25519.sign(tagged))
    with pytest.raises(InvalidAccountRequestSignature):
        verify_account_request(parse_account_request(data))


def test_unsupported_keys() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    data = build_request("alice", "en-us", spki(ec_key), lambda _: b"\x00" * 64)
    with pytest.raises(UnsupportedAccountKey):
        verify_account_request(parse_account_request(data))
    # RSA-PSS with an unsupported hash in its parameters.
    sha1 = build_request("a", "en", pss_spki(RSA_2048, "sha1", 20), lambda _: b"\x00" * 256)
    with pytest.raises(UnsupportedAccountKey):
        verify_account_request(parse_account_request(sha1))


def test_garbage_key_bytes_are_unsupported() -> None:
    bogus = bytes.fromhex("300a300506032b6570030100")  # Ed25519 SPKI with an empty key
    data = build_request("alice", "en-us", bogus, lambda _: b"\x00" * 64)
    with pytest.raises((UnsupportedAccountKey, MalformedAccountRequest)):
        verify_account_request(parse_account_request(data))


@pytest.mark.parametrize("cut", [0, 1, 2, 10, 60, 100])
def test_truncated_der_is_malformed(cut: int) -> None:
    data = _ed25519_request()
    with pytest.raises(MalformedAccountRequest):
        parse_account_request(data[:cut])


def test_trailing_garbage_is_malformed() -> None:
    with pytest.raises(MalformedAccountRequest):
        parse_account_request(_ed25519_request() + b"\x00")


def test_non_minimal_length_is_malformed() -> None:
    data = _ed25519_request()
    assert data[:3] == b"\x30\x81\x80"
    with pytest.raises(MalformedAccountRequest):
        parse_account_request(b"\x30\x82\x00\x80" + data[3:])


def test_wrong_tags_are_malformed() -> None:
    data = bytearray(_ed25519_request())
    data[3] = 0x30  # [0] request re-tagged as a universal SEQUENCE
    with pytest.raises(MalformedAccountRequest):
        parse_account_request(bytes(data))
    with pytest.raises(MalformedAccountRequest):
        parse_account_request(bytes.fromhex("3003020101"))


def test_bit_string_with_unused_bits_is_malformed() -> None:
    data = bytearray(_ed25519_request())
    index = data.rindex(b"\x81\x41\x00") + 2
    data[index] = 1
    with pytest.raises(MalformedAccountRequest):
        parse_account_request(bytes(data))


# --- Keys that can become VeraId member keys -------------------------------------------------


def test_member_key_limits_are_veraids() -> None:
    # Ours is a copy, so letro needs nothing private from veraid; this keeps them in step.
    assert set(veraid._pki._KEY_ALGORITHM_BY_MODULUS) == MEMBER_KEY_MODULUS_BITS
    assert veraid._limits.MAX_RSA_EXPONENT_BITS == MEMBER_KEY_MAX_EXPONENT_BITS


@pytest.mark.parametrize("key_spki", [spki(RSA_2048), pss_spki(RSA_2048)], ids=["rsa", "pss"])
def test_rsa_member_keys_are_usable(key_spki: bytes) -> None:
    check_member_key(key_spki)  # no exception


def _long_exponent_spki() -> bytes:
    modulus = RSA_2048.public_key().public_numbers().n
    key = rsa.RSAPublicNumbers(2**40 + 15, modulus).public_key()
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("key_spki", "reason"),
    [
        (spki(ED25519), "VeraId member keys are RSA; this one is Ed25519"),
        (spki(ed448.Ed448PrivateKey.generate()), "VeraId member keys are RSA; this one is Ed448"),
        (
            spki(ec.generate_private_key(ec.SECP256R1())),
            "VeraId member keys are RSA; this one is EC",
        ),
        (
            spki(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
            "RSA key of 1024 bits; VeraId takes 2048, 3072, 4096",
        ),
        (_long_exponent_spki(), "RSA exponent of 41 bits; VeraId takes at most 33"),
    ],
    ids=["ed25519", "ed448", "p256", "rsa-1024", "rsa-long-exponent"],
)
def test_keys_veraid_refuses_are_unusable(key_spki: bytes, reason: str) -> None:
    with pytest.raises(UnusableMemberKey) as error:
        check_member_key(key_spki)
    assert str(error.value) == reason


def test_garbage_is_unusable() -> None:
    with pytest.raises(UnusableMemberKey, match="Unreadable public key"):
        check_member_key(b"not a key")
