"""``awala.connection_params``: relaynet-core's NodeConnectionParams, decoded strictly."""

from __future__ import annotations

import contextlib

import pytest
from asn1crypto import core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from awala.connection_params import (
    NodeConnectionParams,
    SessionKey,
    parse_node_connection_params,
    serialise_node_connection_params,
)
from awala.errors import AwalaError, InvalidConnectionParams
from tests.relaynet import GeneratedParams


def _spki(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


RSA_SPKI = _spki(rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC_SPKI = _spki(ec.generate_private_key(ec.SECP256R1()))
VALID = NodeConnectionParams(
    internet_address="example.com",
    identity_key=RSA_SPKI,
    session_key=SessionKey(key_id=b"\x01\x02\x03\x04\x05\x06\x07\x08", public_key=EC_SPKI),
)
VALID_DER = serialise_node_connection_params(VALID)


def test_parameters_made_by_relaynet_core(relaynet_params: GeneratedParams) -> None:
    params = parse_node_connection_params(relaynet_params.der)

    assert params == NodeConnectionParams(
        internet_address=relaynet_params.internet_address,
        identity_key=relaynet_params.identity_key,
        session_key=SessionKey(
            key_id=relaynet_params.session_key_id,
            public_key=relaynet_params.session_public_key,
        ),
    )
    # Byte-exact round trip: our encoder writes what relaynet-core writes.
    assert serialise_node_connection_params(params) == relaynet_params.der


def test_tags_are_implicit_context_tags() -> None:
    # 30 (SEQUENCE), then [0] primitive (0x80) holding the VisibleString's bytes directly.
    address = b"example.com"
    assert VALID_DER[VALID_DER.index(b"\x80") :].startswith(b"\x80\x0b" + address)
    assert b"\x81\x82" in VALID_DER  # [1] primitive, long length: the identity key
    assert b"\xa2" in VALID_DER  # [2] constructed: the session key


def test_round_trip() -> None:
    assert parse_node_connection_params(VALID_DER) == VALID


def _der(**fields: object) -> bytes:
    class Session(core.Sequence):
        _fields = [  # noqa: RUF012
            ("key_id", core.OctetString, {"implicit": 0}),
            ("public_key", core.OctetString, {"implicit": 1}),
        ]

    class Params(core.Sequence):
        _fields = [  # noqa: RUF012
            ("internet_address", core.VisibleString, {"implicit": 0}),
            ("identity_key", core.OctetString, {"implicit": 1}),
            ("session_key", Session, {"implicit": 2, "optional": True}),
        ]

    values: dict[str, object] = {
        "internet_address": "example.com",
        "identity_key": RSA_SPKI,
        "session_key": {"key_id": b"id", "public_key": EC_SPKI},
    }
    values.update(fields)
    return bytes(Params({k: v for k, v in values.items() if v is not None}).dump())


def _explicitly_tagged() -> bytes:
    class Params(core.Sequence):
        _fields = [  # noqa: RUF012
            ("internet_address", core.VisibleString, {"explicit": 0}),
            ("identity_key", core.OctetString, {"explicit": 1}),
        ]

    return bytes(Params({"internet_address": "example.com", "identity_key": RSA_SPKI}).dump())


INVALID = {
    "empty": b"",
    "trailing byte": VALID_DER + b"\x00",
    "truncated": VALID_DER[:-1],
    "not a sequence": core.OctetString(VALID_DER).dump(),
    "empty sequence": b"\x30\x00",
    "explicit tags": _explicitly_tagged(),
    "indefinite length (BER)": b"\x30\x80" + VALID_DER[4:] + b"\x00\x00",
    "non-minimal length": b"\x30\x83\x00" + VALID_DER[2:],
    "no session key": _der(session_key=None),
    "empty address": _der(internet_address=""),
    "empty key id": _der(session_key={"key_id": b"", "public_key": EC_SPKI}),
    "identity key not a key": _der(identity_key=b"not a key"),
    "identity key is EC": _der(identity_key=EC_SPKI),
    "session key is RSA": _der(session_key={"key_id": b"id", "public_key": RSA_SPKI}),
    "session key trailing byte": _der(session_key={"key_id": b"id", "public_key": EC_SPKI + b"!"}),
    # rsaEncryption, but the BIT STRING holds a NULL where RSAPublicKey should be.
    "RSA key that is not RSAPublicKey": _der(
        identity_key=bytes.fromhex("3014300d06092a864886f70d01010105000303000500")
    ),
}


@pytest.mark.parametrize("der", INVALID.values(), ids=INVALID.keys())
def test_invalid_input_is_refused(der: bytes) -> None:
    assert len(VALID_DER) > 255  # so the slicing above hits the two-byte length form
    with pytest.raises(InvalidConnectionParams):
        parse_node_connection_params(der)


def test_the_error_belongs_to_the_package_hierarchy() -> None:
    assert issubclass(InvalidConnectionParams, AwalaError)


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_fuzz_arbitrary_bytes_only_raise_our_error(der: bytes) -> None:
    with contextlib.suppress(InvalidConnectionParams):
        parse_node_connection_params(der)


@settings(max_examples=400)
@given(
    st.integers(0, len(VALID_DER) - 1),
    st.integers(0, 255),
    st.integers(0, len(VALID_DER)),
)
def test_fuzz_mutations_of_valid_params_only_raise_our_error(
    position: int, value: int, cut: int
) -> None:
    mutated = bytearray(VALID_DER)
    mutated[position] = value
    for candidate in (bytes(mutated), bytes(mutated[:cut])):
        try:
            parsed = parse_node_connection_params(candidate)
        except InvalidConnectionParams:
            continue
        # Whatever is accepted is canonical: it re-encodes to the very same bytes.
        assert serialise_node_connection_params(parsed) == candidate
