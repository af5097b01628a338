"""The AES-256-GCM payload codec on its own: formats, failures, rotation, the data converter."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from payload_codec import (
    ENCODING,
    KEY_ID_KEY,
    NONCE_BYTES,
    EncryptionCodec,
    MalformedEncryptedPayload,
    NoPayloadKeys,
    PayloadDecodeError,
    PayloadKey,
    PayloadKeyring,
    UndecryptablePayload,
    UnknownPayloadKey,
    data_converter,
)

KEY_A = PayloadKey("a", bytes(range(32)))
KEY_B = PayloadKey("b-2026.11", bytes(range(32, 64)))
PERSONAL = b'{"requester":"alice@applepie.rocks","key":"YWxpY2Uta2V5"}'


def codec(*keys: PayloadKey, active: PayloadKey | None = None) -> EncryptionCodec:
    return EncryptionCodec(PayloadKeyring(keys, (active or keys[0]).key_id))


def plain(data: bytes = PERSONAL) -> Payload:
    return Payload(metadata={"encoding": b"json/plain", "messageType": b"Pairing"}, data=data)


def test_an_encrypted_payload_shows_only_its_encoding_and_key_id() -> None:
    encrypted = codec(KEY_A).encrypt(plain())

    assert dict(encrypted.metadata) == {"encoding": ENCODING, KEY_ID_KEY: b"a"}
    assert b"alice" not in encrypted.data
    assert b"json/plain" not in encrypted.data  # the original metadata is hidden too
    assert codec(KEY_A).decrypt(encrypted) == plain()


def test_each_payload_gets_a_fresh_nonce() -> None:
    a_codec = codec(KEY_A)
    first, second = a_codec.encrypt(plain()), a_codec.encrypt(plain())
    assert first.data[:NONCE_BYTES] != second.data[:NONCE_BYTES]
    assert first.data != second.data


async def test_the_async_interface_keeps_order_and_count() -> None:
    a_codec = codec(KEY_A)
    payloads = [plain(b"1"), plain(b"2"), plain(b"3")]
    encoded = await a_codec.encode(payloads)
    assert len(encoded) == 3
    assert await a_codec.decode(encoded) == payloads


def test_unencrypted_payloads_written_before_encryption_still_decode() -> None:
    legacy = plain()
    assert codec(KEY_A).decrypt(legacy) == legacy
    binary = Payload(metadata={"encoding": b"binary/null"})
    assert codec(KEY_A).decrypt(binary) == binary


def test_a_payload_under_an_unknown_key_is_an_error_naming_it() -> None:
    encrypted = codec(KEY_B).encrypt(plain())
    with pytest.raises(UnknownPayloadKey, match=r"'b-2026\.11'") as raised:
        codec(KEY_A).decrypt(encrypted)
    assert raised.value.key_id == "b-2026.11"


@pytest.mark.parametrize("position", [0, NONCE_BYTES - 1, NONCE_BYTES, -17, -1])
def test_tampered_nonce_ciphertext_or_tag_fails_authentication(position: int) -> None:
    encrypted = codec(KEY_A).encrypt(plain())
    data = bytearray(encrypted.data)
    data[position] ^= 0x01
    encrypted.data = bytes(data)
    with pytest.raises(UndecryptablePayload, match="failed authentication"):
        codec(KEY_A).decrypt(encrypted)


def test_the_key_id_is_bound_to_the_ciphertext() -> None:
    # Two ids for one key: relabelling a payload must still fail (associated data).
    twin = PayloadKey("twin", KEY_A.secret)
    encrypted = codec(KEY_A, twin).encrypt(plain())
    encrypted.metadata[KEY_ID_KEY] = b"twin"
    with pytest.raises(UndecryptablePayload):
        codec(KEY_A, twin).decrypt(encrypted)


def test_a_different_key_under_the_same_id_fails_authentication() -> None:
    impostor = PayloadKey("a", os.urandom(32))
    with pytest.raises(UndecryptablePayload):
        codec(impostor).decrypt(codec(KEY_A).encrypt(plain()))


@pytest.mark.parametrize(
    ("metadata", "data", "message"),
    [
        ({"encoding": ENCODING}, b"x" * 40, "without encryption-key-id"),
        ({"encoding": ENCODING, KEY_ID_KEY: b"a:b"}, b"x" * 40, "key id is not"),
        ({"encoding": ENCODING, KEY_ID_KEY: b"a"}, b"x" * 27, "shorter than a nonce and a tag"),
    ],
)
def test_malformed_encrypted_payloads_are_named(
    metadata: dict[str, bytes], data: bytes, message: str
) -> None:
    with pytest.raises(MalformedEncryptedPayload, match=message):
        codec(KEY_A).decrypt(Payload(metadata=metadata, data=data))


def test_authentic_bytes_that_are_no_payload_are_refused() -> None:
    # Another program sharing the key and the format, but not sealing a Payload protobuf.
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(KEY_A.secret).encrypt(nonce, b"\xff\xff\xff", ENCODING + b"\x00a")
    encrypted = Payload(metadata={"encoding": ENCODING, KEY_ID_KEY: b"a"}, data=nonce + sealed)
    with pytest.raises(MalformedEncryptedPayload, match="not a Payload"):
        codec(KEY_A).decrypt(encrypted)


@given(st.binary(max_size=200), st.sampled_from([b"a", b"b-2026.11", b"zz", b"", b"\xff"]))
def test_any_bytes_marked_encrypted_give_only_decode_errors(data: bytes, key_id: bytes) -> None:
    payload = Payload(metadata={"encoding": ENCODING, KEY_ID_KEY: key_id}, data=data)
    with pytest.raises(PayloadDecodeError):
        codec(KEY_A, KEY_B).decrypt(payload)


def test_rotation_every_key_decrypts_only_the_active_one_encrypts() -> None:
    under_a = codec(KEY_A).encrypt(plain(b"old"))
    rotated = codec(KEY_A, KEY_B, active=KEY_B)

    assert rotated.decrypt(under_a) == plain(b"old")
    under_b = rotated.encrypt(plain(b"new"))
    assert under_b.metadata[KEY_ID_KEY] == b"b-2026.11"
    assert codec(KEY_B).decrypt(under_b) == plain(b"new")
    with pytest.raises(UnknownPayloadKey):
        codec(KEY_B).decrypt(under_a)


@pytest.mark.parametrize(
    ("key_id", "secret", "message"),
    [
        ("a", bytes(16), "'a' is 16 bytes, not 32"),
        ("a", bytes(33), "'a' is 33 bytes, not 32"),
        ("", bytes(32), "a key id must be"),
        ("a b", bytes(32), "a key id must be"),
        ("-a", bytes(32), "a key id must be"),
        ("a" * 65, bytes(32), "a key id must be"),
    ],
)
def test_keys_are_32_bytes_under_a_plain_id(key_id: str, secret: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PayloadKey(key_id, secret)


def test_a_key_never_shows_in_its_repr() -> None:
    assert KEY_A.secret.hex() not in repr(KEY_A)
    assert repr(KEY_A.secret) not in repr(PayloadKeyring((KEY_A,), "a"))


@pytest.mark.parametrize(
    ("keys", "active", "message"),
    [
        ((), "a", "at least one key"),
        ((KEY_A, PayloadKey("a", bytes(32))), "a", "given twice: a"),
        ((KEY_A,), "b", "'b' is not one of the keys: a"),
    ],
)
def test_a_keyring_is_consistent(keys: tuple[PayloadKey, ...], active: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PayloadKeyring(keys, active)


@dataclass(frozen=True)
class Request:
    requester: str
    key: bytes


async def test_the_data_converter_encrypts_values_and_reads_them_back() -> None:
    converter = data_converter(PayloadKeyring((KEY_A,), "a"))
    value = Request("alice@applepie.rocks", b"alice-key")

    [payload] = await converter.encode([value])
    assert payload.metadata["encoding"] == ENCODING
    assert b"alice" not in payload.data
    assert await converter.decode([payload], [Request]) == [value]


async def test_the_data_converter_encrypts_failure_messages_too() -> None:
    converter = data_converter(PayloadKeyring((KEY_A,), "a"))
    failure = Failure()
    await converter.encode_failure(ApplicationError("member alice@applepie.rocks exists"), failure)

    assert "alice" not in failure.message
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    assert b"alice" not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert str(decoded) == "member alice@applepie.rocks exists"


async def test_without_keys_payloads_are_left_as_they_are() -> None:
    converter = data_converter(None)
    [payload] = await converter.encode([Request("alice@applepie.rocks", b"k")])
    assert (
        payload == (await DataConverter.default.encode([Request("alice@applepie.rocks", b"k")]))[0]
    )
    assert await converter.decode([payload], [Request]) == [Request("alice@applepie.rocks", b"k")]


async def test_without_keys_an_encrypted_payload_is_refused_not_misread() -> None:
    encrypted = codec(KEY_B).encrypt(plain())
    with pytest.raises(NoPayloadKeys, match=r"'b-2026\.11', but this process has no payload keys"):
        await data_converter(None).decode([encrypted])
