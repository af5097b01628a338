"""Fuzzing the bundle parsers: whatever the bytes, only VeraidError subclasses escape."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import veraid
from tests.veraid_helpers import PLAINTEXT, SERVICE, Pki, make_pki

FUZZ = settings(
    max_examples=250,
    deadline=None,
    # The samples are new each session (fresh keys, randomised RSA-PSS), so examples saved
    # by an earlier session would replay differently: keep no example database.
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def samples(pki: Pki) -> dict[str, bytes]:
    return {
        "member": pki.member_signature(),
        "member-encapsulated": pki.member_signature(encapsulate=True),
        "organisation": pki.org_signature("bob", encapsulate=True),
        "member-id": pki.member_id_bundle,
    }


@st.composite
def mutations(draw: st.DrawFn, original: bytes) -> bytes:
    """A valid bundle with a few bytes changed, cut short, or with bytes inserted."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif data:
            del data[position]
    return bytes(data)


def _verify_everything(pki: Pki, data: bytes) -> None:
    claimed = None
    with contextlib.suppress(veraid.VeraidError):
        claimed = veraid.read_signature_bundle(data)
    for plaintext in (PLAINTEXT, None):
        with contextlib.suppress(veraid.VeraidError):
            result = veraid.verify_signature_bundle(
                data, SERVICE, pki.now, plaintext=plaintext, trust_anchors=pki.trust_anchors
            )
            # Whatever verifies was readable, and reading claimed exactly what verified:
            # routers rely on this to send a bundle where its verification belongs.
            assert claimed is not None
            assert claimed.member == result.member
            assert claimed.plaintext == (None if plaintext is not None else result.plaintext)
    with contextlib.suppress(veraid.VeraidError):
        veraid.verify_member_id_bundle(data, SERVICE, pki.now, trust_anchors=pki.trust_anchors)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes(pki: Pki, data: bytes) -> None:
    _verify_everything(pki, data)


@settings(FUZZ, max_examples=500)
@given(data=st.data())
def test_mutated_bundles(pki: Pki, samples: dict[str, bytes], data: st.DataObject) -> None:
    sample = samples[data.draw(st.sampled_from(sorted(samples)))]
    _verify_everything(pki, data.draw(mutations(sample)))


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_mutated_dnssec_chains(pki: Pki, data: st.DataObject) -> None:
    # Mutations inside the DNS messages, in a well-formed bundle: they reach the DNS parser
    # and DNSSEC validation instead of stopping at the DER lengths.
    responses = list(pki.chain.responses)
    index = data.draw(st.integers(0, len(responses) - 1))
    responses[index] = data.draw(mutations(responses[index]))
    if data.draw(st.booleans()):
        responses.append(data.draw(st.binary(max_size=40)))
    bundle = veraid.serialise_member_id_bundle(
        responses, pki.org_certificate, pki.member_certificate
    )
    with contextlib.suppress(veraid.VeraidError):
        veraid.verify_member_id_bundle(bundle, SERVICE, pki.now, trust_anchors=pki.trust_anchors)


@FUZZ
@given(text=st.text(max_size=80))
def test_txt_rdata(text: str) -> None:
    with contextlib.suppress(veraid.TxtRecordError):
        veraid.parse_txt_rdata(text)
