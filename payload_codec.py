"""Encryption at rest of what the Letro server stores in Temporal: an AES-256-GCM payload codec.

Temporal keeps every workflow's history, and with it the personal data the workflows carry
(VeraId ids, Awala endpoint ids, public keys, user names). With a keyring configured, each
payload the data converter produces (workflow, activity, signal and query inputs and results,
memos, failure messages) is replaced before it leaves the process by an encrypted one:

* ``metadata``: ``encoding: binary/encrypted`` and ``encryption-key-id: <id>``, nothing else;
* ``data``: a fresh 96-bit nonce, then the AES-256-GCM encryption of the original ``Payload``
  protobuf (its metadata included, so even the original encoding is hidden), with the outer
  encoding and key id as associated data.

Decoding accepts payloads under any key of the keyring, so keys rotate by adding the new key,
making it active and keeping the old ones until no history needs them; only the active key
encrypts. Payloads written before encryption was turned on (any other encoding) pass through
unchanged, while an encrypted payload that cannot be decrypted is an error, never passed on.
Without a keyring nothing is encrypted, and an encrypted payload is still refused, loudly.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
ENCODING_KEY = "encoding"
KEY_ID_KEY = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits: GCM's native nonce size, random for each payload
TAG_BYTES = 16
# Ids travel in payload metadata, in TEMPORAL_PAYLOAD_KEYS (separated by ':' and ',') and in key
# files (separated by spaces), so none of those characters may be part of one.
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KEY_ID_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


class PayloadDecodeError(Exception):
    """An encrypted payload that cannot be turned back into the original one."""


class UnknownPayloadKey(PayloadDecodeError):
    """The payload was encrypted with a key this process was not given."""

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"payload encrypted with key {key_id!r}, which is not among the configured keys"
            " (TEMPORAL_PAYLOAD_KEYS or TEMPORAL_PAYLOAD_KEYS_FILE)"
        )
        self.key_id = key_id


class NoPayloadKeys(PayloadDecodeError):
    """An encrypted payload reached a process configured without payload keys."""

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"payload encrypted with key {key_id!r}, but this process has no payload keys"
            " (TEMPORAL_PAYLOAD_KEYS or TEMPORAL_PAYLOAD_KEYS_FILE)"
        )
        self.key_id = key_id


class UndecryptablePayload(PayloadDecodeError):
    """Authentication failed: the ciphertext or its metadata was altered, or the key is wrong."""


class MalformedEncryptedPayload(PayloadDecodeError):
    """Marked encrypted, but not shaped as this codec writes payloads."""


@dataclass(frozen=True, slots=True)
class PayloadKey:
    key_id: str
    # Never in a repr: settings objects may end up in a log line or a traceback.
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        # The messages never quote the secret, nor an id that failed (it may be a pasted key).
        if not KEY_ID.fullmatch(self.key_id):
            raise ValueError(f"a key id must be {KEY_ID_RULE}")
        if len(self.secret) != KEY_BYTES:
            raise ValueError(
                f"key {self.key_id!r} is {len(self.secret)} bytes, not {KEY_BYTES} (AES-256)"
            )


@dataclass(frozen=True, slots=True)
class PayloadKeyring:
    """The keys that decrypt, and the one of them that encrypts."""

    keys: tuple[PayloadKey, ...]
    active_key_id: str

    def __post_init__(self) -> None:
        ids = [key.key_id for key in self.keys]
        if not ids:
            raise ValueError("a keyring needs at least one key")
        duplicates = sorted({key_id for key_id in ids if ids.count(key_id) > 1})
        if duplicates:
            raise ValueError(f"key ids given twice: {', '.join(duplicates)}")
        if self.active_key_id not in ids:
            raise ValueError(
                f"the active key {self.active_key_id!r} is not one of the keys: {', '.join(ids)}"
            )

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.key_id for key in self.keys)


def _associated_data(key_id: str) -> bytes:
    # Binds the outer metadata to the ciphertext: a payload relabelled with another encoding
    # or key id fails authentication instead of being decrypted under a different reading.
    return ENCODING + b"\x00" + key_id.encode("ascii")


class EncryptionCodec(PayloadCodec):
    """Encrypts with the keyring's active key; decrypts with any of its keys."""

    def __init__(self, keyring: PayloadKeyring) -> None:
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keyring.keys}
        self._active_key_id = keyring.active_key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        # AES-GCM costs microseconds per payload (see benchmarks/payload_codec.py): cheaper
        # inline than handing each batch to a thread.
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._active_key_id
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[key_id].encrypt(
            nonce, payload.SerializeToString(deterministic=True), _associated_data(key_id)
        )
        return Payload(
            metadata={ENCODING_KEY: ENCODING, KEY_ID_KEY: key_id.encode("ascii")},
            data=nonce + ciphertext,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; an unencrypted one (written before encryption) as it is."""
        if payload.metadata.get(ENCODING_KEY) != ENCODING:
            return payload
        key_id = _key_id(payload)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownPayloadKey(key_id)
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise MalformedEncryptedPayload(
                f"encrypted payload of {len(payload.data)} bytes, shorter than a nonce and a tag"
            )
        nonce, ciphertext = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plaintext = cipher.decrypt(nonce, ciphertext, _associated_data(key_id))
        except InvalidTag:
            raise UndecryptablePayload(
                f"payload under key {key_id!r} failed authentication: altered, or encrypted"
                " with another key of the same id"
            ) from None
        return _original(plaintext)


def _key_id(payload: Payload) -> str:
    raw = payload.metadata.get(KEY_ID_KEY)
    if raw is None:
        raise MalformedEncryptedPayload(f"encrypted payload without {KEY_ID_KEY} metadata")
    key_id = raw.decode("ascii", errors="replace")
    if not KEY_ID.fullmatch(key_id):
        raise MalformedEncryptedPayload(f"encrypted payload whose key id is not {KEY_ID_RULE}")
    return key_id


def _original(plaintext: bytes) -> Payload:
    original = Payload()
    try:
        original.ParseFromString(plaintext)
    except DecodeError:
        # Authenticated yet not a Payload: written by another program sharing the key.
        raise MalformedEncryptedPayload("decrypted payload is not a Payload protobuf") from None
    return original


class EncryptedPayloadGuard(PayloadCodec):
    """The codec of a process without keys: payloads pass as they are, encrypted ones fail.

    Without a codec, the SDK would meet an encrypted payload only when converting it to a
    value, inside the workflow, where a signal whose input cannot be converted is dropped
    (logged, not retried): a worker deployed without the keys would lose requests. Failing
    here fails the workflow task instead, retried until the worker is given the keys.
    """

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        for payload in payloads:
            if payload.metadata.get(ENCODING_KEY) == ENCODING:
                raise NoPayloadKeys(payload.metadata.get(KEY_ID_KEY, b"").decode(errors="replace"))
        return list(payloads)


_WITHOUT_KEYS = dataclasses.replace(DataConverter.default, payload_codec=EncryptedPayloadGuard())


def data_converter(keyring: PayloadKeyring | None) -> DataConverter:
    """Temporal's default converter, encrypting every payload when given a keyring.

    Without one, payloads are left as they are, but an encrypted one is refused loudly.
    """
    if keyring is None:
        return _WITHOUT_KEYS
    return dataclasses.replace(
        DataConverter.default,
        payload_codec=EncryptionCodec(keyring),
        # Failure messages and stack traces are not payloads by default: this moves them into
        # one, so an error quoting personal data is encrypted like the rest.
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
