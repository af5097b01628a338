"""Fuzzing the bundle parsers: whatever the bytes, only VeraidError subclasses escape, and
chains around the limits of veraid._limits are refused exactly when over one."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import veraid
from veraid import _limits
from veraid._dns import validate_chain
from veraid_helpers import (
    ORG,
    PLAINTEXT,
    SERVICE,
    ChainShape,
    Pki,
    make_pki,
    padded,
    shaped_pki,
    with_unrelated_answers,
)

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


# --- Around the limits of veraid._limits ------------------------------------------------------


@st.composite
def edited_chains(draw: st.DrawFn, responses: tuple[bytes, ...]) -> list[bytes]:
    """A valid chain with its sizes pushed around the limits: unrelated answers, padding,
    answer counts rewritten in the headers, responses added (copies or junk)."""
    chain = list(responses)
    indices = st.integers(0, len(chain) - 1)
    for index in draw(st.lists(indices, max_size=4)):
        if draw(st.booleans()):
            extra = draw(st.integers(0, _limits.MAX_ANSWER_RECORDS + 2))
            chain[index] = with_unrelated_answers(chain[index], extra)
        elif len(chain[index]) < _limits.MAX_RESPONSE_BYTES - 100:  # room for the padding
            size = _limits.MAX_RESPONSE_BYTES + draw(st.integers(-2, 1))
            chain[index] = padded(chain[index], size)
    # Last, as they leave messages dnspython cannot read back: answer counts that lie.
    for index in draw(st.lists(indices, max_size=2)):
        count = draw(st.sampled_from([0, 1, _limits.MAX_ANSWER_RECORDS + 1, 0xFFFF]))
        chain[index] = chain[index][:6] + count.to_bytes(2, "big") + chain[index][8:]
    extra_responses = draw(st.integers(0, _limits.MAX_CHAIN_RESPONSES - len(chain) + 2))
    for _ in range(extra_responses):
        if draw(st.booleans()):
            chain.append(chain[draw(st.integers(0, len(responses) - 1))])
        else:
            chain.append(draw(st.binary(max_size=40)))
    return chain


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_chains_around_the_limits(pki: Pki, data: st.DataObject) -> None:
    chain = data.draw(edited_chains(pki.chain.responses))
    bundle = veraid.serialise_member_id_bundle(chain, pki.org_certificate, pki.member_certificate)
    with contextlib.suppress(veraid.VeraidError):
        veraid.verify_member_id_bundle(bundle, SERVICE, pki.now, trust_anchors=pki.trust_anchors)
    with contextlib.suppress(veraid.VeraidError):
        validate_chain(chain, ORG, pki.trust_anchors)


shapes = st.builds(
    ChainShape,
    extra_keys=st.integers(0, _limits.MAX_RRSET_RECORDS),
    colliding_keys=st.integers(0, _limits.MAX_KEYS_PER_RRSIG),
    rrsigs=st.integers(1, _limits.MAX_RRSIGS_PER_RRSET + 1),
    junk_rrsigs=st.integers(0, 1),
    extra_ds=st.integers(0, 3),
    extra_answers=st.integers(0, 6),
    extra_responses=st.integers(0, _limits.MAX_CHAIN_RESPONSES - 6 + 1),
)


def _within_limits(shape: ChainShape, responses: tuple[bytes, ...]) -> bool:
    """Whether a chain of this shape (RSA-2048 zone keys, example.com) is within every
    limit, computed from the shape: 3 DNSKEY, 2 DS and 1 TXT RRsets are checked."""
    colliding = min(shape.colliding_keys, shape.extra_keys)
    rrsigs = shape.rrsigs + shape.junk_rrsigs
    rrsets = [1 + shape.extra_keys] * 3 + [1 + shape.extra_ds] * 2 + [1]
    answers = [records + rrsigs + shape.extra_answers for records in rrsets]
    # DNSKEY RRsets are checked with their DS-named key, the others with its colliders too.
    cost = rrsigs * (3 + 3 * (1 + colliding))
    sizes = [len(response) for response in responses]
    return (
        len(responses) <= _limits.MAX_CHAIN_RESPONSES
        and max(sizes) <= _limits.MAX_RESPONSE_BYTES
        and sum(sizes) <= _limits.MAX_CHAIN_BYTES
        and max(answers) <= _limits.MAX_ANSWER_RECORDS
        and sum(answers) <= _limits.MAX_CHAIN_RECORDS
        and max(rrsets) <= _limits.MAX_RRSET_RECORDS
        and rrsigs <= _limits.MAX_RRSIGS_PER_RRSET
        and 1 + colliding <= _limits.MAX_KEYS_PER_RRSIG
        and cost <= _limits.MAX_SIGNATURE_COST
    )


@settings(FUZZ, max_examples=40)
@given(shape=shapes)
def test_signed_chains_verify_exactly_when_within_the_limits(shape: ChainShape) -> None:
    pki = shaped_pki(shape)
    within = _within_limits(shape, pki.chain.responses)

    try:
        result = veraid.verify_member_id_bundle(
            pki.member_id_bundle, SERVICE, pki.now, trust_anchors=pki.trust_anchors
        )
    except veraid.ChainLimitError:
        assert not within
    else:
        assert within
        assert result.member == veraid.Member(ORG, "alice")
