"""``ContactPairingRequest`` and ``ContactPairingFailure``: byte-exact vectors, strict DER."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from letro.contact_pairing import (
    ContactPairingFailureReason,
    MalformedContactPairingRequest,
    parse_contact_pairing_failure,
    parse_contact_pairing_request,
    serialise_contact_pairing_failure,
    serialise_contact_pairing_request,
)
from letro.veraid_ids import pairing_key

# From the research notes (§1.3): an Ed25519 key (any SPKI is well-formed here) and
# the target "bob@cuppa.fans".
ED25519_SPKI = bytes.fromhex("302a300506032b6570032100") + bytes(range(32))
REQUEST_VECTOR = (
    bytes.fromhex("303ca02a300506032b6570032100")
    + bytes(range(32))
    + bytes.fromhex("810e626f624063757070612e66616e73")
)


def test_request_vector_parses() -> None:
    request = parse_contact_pairing_request(REQUEST_VECTOR)
    assert request.requester_endpoint_key == ED25519_SPKI
    assert request.target_veraid_id == "bob@cuppa.fans"


def test_request_vector_is_reproduced() -> None:
    assert serialise_contact_pairing_request(ED25519_SPKI, "bob@cuppa.fans") == REQUEST_VECTOR


@pytest.mark.parametrize(
    ("reason", "last_byte"),
    [
        (ContactPairingFailureReason.INVALID_REQUESTER_VERAID, 0),
        (ContactPairingFailureReason.INVALID_TARGET_VERAID, 1),
        (ContactPairingFailureReason.INVALID_REQUESTER_AWALA_KEY, 2),
    ],
)
def test_failure_vectors(reason: ContactPairingFailureReason, last_byte: int) -> None:
    expected = bytes.fromhex("3013800e626f624063757070612e66616e738101") + bytes([last_byte])
    assert serialise_contact_pairing_failure("bob@cuppa.fans", reason) == expected
    assert parse_contact_pairing_failure(expected) == ("bob@cuppa.fans", reason)


@pytest.mark.parametrize(
    "der",
    [
        b"",
        REQUEST_VECTOR + b"\x00",  # trailing byte
        REQUEST_VECTOR[:-1],  # truncated
        b"\x30\x80" + REQUEST_VECTOR[2:] + b"\x00\x00",  # indefinite length
        b"\x30\x81\x3c" + REQUEST_VECTOR[2:],  # non-minimal length
        bytes.fromhex("3005810362c3"),  # no key, bad UTF-8
        bytes.fromhex("300e") + bytes.fromhex("810c") + b"bob@cuppa.fan",
    ],
    ids=["empty", "trailing", "truncated", "indefinite", "non-minimal", "no-key", "key-missing"],
)
def test_malformed_requests_are_refused(der: bytes) -> None:
    with pytest.raises(MalformedContactPairingRequest):
        parse_contact_pairing_request(der)


@given(st.binary(max_size=200))
def test_no_bytes_escape_the_typed_error(der: bytes) -> None:
    with contextlib.suppress(MalformedContactPairingRequest):
        parse_contact_pairing_request(der)


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("bob@example.com", "bob@example.com"),
        ("bob@EXAMPLE.Com", "bob@example.com"),
        ("Bob@Example.com", "bob@example.com"),
        ("ÉLODIE@example.com", "élodie@example.com"),
        ("alice@はじめよう.みんな", "alice@xn--p8j9a0d9c9a.xn--q9jyb4c"),
        ("alice@xn--p8j9a0d9c9a.xn--q9jyb4c", "alice@xn--p8j9a0d9c9a.xn--q9jyb4c"),
    ],
)
def test_pairing_key_folds_case_and_idn(variant: str, expected: str) -> None:
    assert pairing_key(variant) == expected
