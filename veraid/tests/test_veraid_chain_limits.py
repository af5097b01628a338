"""The limits of veraid._limits: a chain (or bundle) at a limit verifies, one past it is
refused with ChainLimitError or LimitError, before the work the limit guards is done.

Chains are signed for real (``veraid_helpers.shaped_pki``), so that a chain over a limit
would otherwise verify: only the limit refuses it.
"""

from __future__ import annotations

from collections.abc import Callable

import dns.message
import dns.name
import pytest
from asn1crypto import core
from cryptography.hazmat.primitives.asymmetric import rsa

import veraid
from veraid import _der, _dnssec, _limits
from veraid_helpers import (
    CPU_BOUND_SECONDS,
    ORG,
    SERVICE,
    ChainShape,
    Pki,
    bloated_signature_bundle,
    cpu_seconds,
    long_exponent_key,
    make_pki,
    member_signature_with,
    organisation,
    organisation_certificate_of_size,
    organisation_certificate_with_elements,
    padded,
    rsa_key,
    rsa_key_with_exponent,
    shaped_pki,
    with_chain,
    with_organisation_certificate,
    with_unrelated_answers,
)


def verify(pki: Pki) -> veraid.MemberIdVerification:
    """Verify the Pki's MemberIdBundle (serialised as is: signing would refuse some chains)."""
    return veraid.verify_member_id_bundle(
        pki.member_id_bundle, SERVICE, pki.now, trust_anchors=pki.trust_anchors
    )


def verify_signature(pki: Pki, bundle: bytes) -> veraid.SignatureVerification:
    return veraid.verify_signature_bundle(bundle, SERVICE, pki.now, trust_anchors=pki.trust_anchors)


def question(response: bytes) -> tuple[dns.name.Name, int]:
    message = dns.message.from_wire(response)
    return message.question[0].name, message.question[0].rdtype


def edited(pki: Pki, edit: Callable[[int, bytes], bytes]) -> Pki:
    """The Pki with ``edit(index, response)`` applied to each response of its chain."""
    return with_chain(pki, [edit(i, r) for i, r in enumerate(pki.chain.responses)])


@pytest.fixture(scope="module")
def pki() -> Pki:
    return shaped_pki(ChainShape())


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the signature checks made (with a real check each time)."""
    calls: list[int] = []
    original = _dnssec.ZoneKey.verifies

    def counting(key: _dnssec.ZoneKey, signature: bytes, data: bytes) -> bool:
        calls.append(1)
        return original(key, signature, data)

    monkeypatch.setattr(_dnssec.ZoneKey, "verifies", counting)
    return calls


def test_a_minimal_chain_is_well_within_every_limit(pki: Pki) -> None:
    assert verify(pki).member == veraid.Member(ORG, "alice")
    assert len(pki.chain.responses) == 6


# --- Responses --------------------------------------------------------------------------------


def test_responses_up_to_the_limit_verify() -> None:
    extra = _limits.MAX_CHAIN_RESPONSES - 6
    full = shaped_pki(ChainShape(extra_responses=extra))

    assert len(full.chain.responses) == _limits.MAX_CHAIN_RESPONSES
    assert verify(full).member.user == "alice"


def test_one_response_too_many_is_refused(pki: Pki, signature_checks: list[int]) -> None:
    extra = _limits.MAX_CHAIN_RESPONSES - 6 + 1
    over = shaped_pki(ChainShape(extra_responses=extra))

    with pytest.raises(veraid.ChainLimitError, match=r"17 responses \(at most 16\)"):
        verify(over)
    assert signature_checks == []


def test_signing_with_a_chain_over_the_limits_is_refused() -> None:
    over = shaped_pki(ChainShape(extra_responses=_limits.MAX_CHAIN_RESPONSES))

    with pytest.raises(veraid.ChainLimitError, match="responses"):
        over.member_signature()


def test_a_response_of_the_largest_size_verifies(pki: Pki) -> None:
    largest = edited(pki, lambda i, r: padded(r, _limits.MAX_RESPONSE_BYTES) if i == 0 else r)

    assert len(largest.chain.responses[0]) == _limits.MAX_RESPONSE_BYTES
    assert verify(largest).member.user == "alice"


def test_a_response_one_byte_too_large_is_refused(pki: Pki) -> None:
    size = _limits.MAX_RESPONSE_BYTES + 1
    over = edited(pki, lambda i, r: padded(r, size) if i == 0 else r)

    with pytest.raises(veraid.ChainLimitError, match=f"{size} bytes"):
        verify(over)


def _padded_to_total(pki: Pki, total: int) -> Pki:
    sizes = [len(response) for response in pki.chain.responses]
    room = total - sum(sizes)
    share, remainder = divmod(room, len(sizes))
    targets = [size + share + (1 if i < remainder else 0) for i, size in enumerate(sizes)]
    return edited(pki, lambda i, r: padded(r, targets[i]))


def test_a_chain_of_the_largest_size_verifies(pki: Pki) -> None:
    largest = _padded_to_total(pki, _limits.MAX_CHAIN_BYTES)

    assert sum(map(len, largest.chain.responses)) == _limits.MAX_CHAIN_BYTES
    assert verify(largest).member.user == "alice"


def test_a_chain_one_byte_too_large_is_refused(pki: Pki) -> None:
    over = _padded_to_total(pki, _limits.MAX_CHAIN_BYTES + 1)

    with pytest.raises(veraid.ChainLimitError, match=f"{_limits.MAX_CHAIN_BYTES + 1} bytes"):
        verify(over)


# --- Records ----------------------------------------------------------------------------------


def _answers(response: bytes) -> int:
    return int.from_bytes(response[6:8], "big")


def test_an_answer_section_of_the_largest_size_verifies(pki: Pki) -> None:
    first = pki.chain.responses[0]
    missing = _limits.MAX_ANSWER_RECORDS - _answers(first)
    full = edited(pki, lambda i, r: with_unrelated_answers(r, missing) if i == 0 else r)

    assert _answers(full.chain.responses[0]) == _limits.MAX_ANSWER_RECORDS
    assert verify(full).member.user == "alice"


def test_one_answer_too_many_is_refused(pki: Pki) -> None:
    missing = _limits.MAX_ANSWER_RECORDS - _answers(pki.chain.responses[0]) + 1
    over = edited(pki, lambda i, r: with_unrelated_answers(r, missing) if i == 0 else r)

    with pytest.raises(veraid.ChainLimitError, match=r"17 answer records \(at most 16\)"):
        verify(over)


def _spread_answers(pki: Pki, total: int) -> Pki:
    """Unrelated answers added across the chain's responses until they hold ``total``."""
    counts = [_answers(response) for response in pki.chain.responses]
    extra = [0] * len(counts)
    for _ in range(total - sum(counts)):
        index = min(range(len(counts)), key=lambda i: counts[i] + extra[i])
        extra[index] += 1
    return edited(pki, lambda i, r: with_unrelated_answers(r, extra[i]))


def test_a_chain_with_the_most_records_verifies(pki: Pki) -> None:
    full = _spread_answers(pki, _limits.MAX_CHAIN_RECORDS)

    assert sum(map(_answers, full.chain.responses)) == _limits.MAX_CHAIN_RECORDS
    assert verify(full).member.user == "alice"


def test_one_record_too_many_in_the_chain_is_refused(pki: Pki, signature_checks: list[int]) -> None:
    over = _spread_answers(pki, _limits.MAX_CHAIN_RECORDS + 1)

    with pytest.raises(veraid.ChainLimitError, match=r"49 answer records \(at most 48\)"):
        verify(over)
    assert signature_checks == []


def test_records_of_responses_validation_does_not_read_are_not_counted() -> None:
    # Unused responses are only read as far as their question.
    shape = ChainShape(extra_responses=4)
    pki = shaped_pki(shape)
    responses = pki.chain.responses
    unused = {i for i, r in enumerate(responses) if question(r)[0].labels[0].startswith(b"unused")}
    assert len(unused) == 4
    full = edited(pki, lambda i, r: with_unrelated_answers(r, 15) if i in unused else r)

    assert verify(full).member.user == "alice"


def test_an_rrset_of_the_largest_size_verifies() -> None:
    full = shaped_pki(ChainShape(extra_keys=_limits.MAX_RRSET_RECORDS - 1))

    assert verify(full).member.user == "alice"


def test_one_record_too_many_in_an_rrset_is_refused(signature_checks: list[int]) -> None:
    over = shaped_pki(ChainShape(extra_keys=_limits.MAX_RRSET_RECORDS))

    with pytest.raises(veraid.ChainLimitError, match=r"DNSKEY RRset of \. has 13 records"):
        verify(over)
    assert signature_checks == []


def test_the_most_rrsigs_verify() -> None:
    full = shaped_pki(ChainShape(rrsigs=_limits.MAX_RRSIGS_PER_RRSET))

    assert verify(full).member.user == "alice"


def test_one_rrsig_too_many_is_refused(signature_checks: list[int]) -> None:
    over = shaped_pki(ChainShape(rrsigs=_limits.MAX_RRSIGS_PER_RRSET + 1))

    with pytest.raises(veraid.ChainLimitError, match=r"has 5 RRSIGs \(at most 4\)"):
        verify(over)
    assert signature_checks == []


def test_duplicate_records_and_rrsigs_count_once_in_the_checks(signature_checks: list[int]) -> None:
    pki = shaped_pki(ChainShape())

    def duplicated(_: int, response: bytes) -> bytes:
        message = dns.message.from_wire(response)
        message.answer = [*message.answer, *message.answer]  # the same records again
        wire: bytes = message.to_wire(want_shuffle=False)
        return wire

    doubled = edited(pki, duplicated)

    assert verify(doubled).member.user == "alice"
    assert len(signature_checks) == 6  # one per RRset, as without the duplicates


# --- Keys -------------------------------------------------------------------------------------


def test_colliding_key_tags_up_to_the_limit_verify(signature_checks: list[int]) -> None:
    colliding = _limits.MAX_KEYS_PER_RRSIG - 1
    full = shaped_pki(ChainShape(extra_keys=colliding, colliding_keys=colliding))

    assert verify(full).member.user == "alice"
    # Over DS and TXT RRsets, each RRSIG tries the junk key sharing its tag first, then the
    # one that verifies; DNSKEY RRsets are checked with the keys their DS records name only.
    assert len(signature_checks) == 3 * _limits.MAX_KEYS_PER_RRSIG + 3


def test_colliding_keys_named_by_ds_records_are_tried_over_dnskey_rrsets(
    signature_checks: list[int],
) -> None:
    colliding = _limits.MAX_KEYS_PER_RRSIG - 1
    shape = ChainShape(extra_keys=colliding, colliding_keys=colliding, delegate_junk=True)
    full = shaped_pki(shape)

    assert verify(full).member.user == "alice"
    # The root's DNSKEY RRset is still checked with the trust anchor's key only.
    assert len(signature_checks) == 5 * _limits.MAX_KEYS_PER_RRSIG + 1


def test_one_colliding_key_too_many_is_refused(signature_checks: list[int]) -> None:
    colliding = _limits.MAX_KEYS_PER_RRSIG
    over = shaped_pki(ChainShape(extra_keys=colliding, colliding_keys=colliding))

    with pytest.raises(veraid.ChainLimitError, match=r"matches 3 DNSKEYs of \. by algorithm"):
        verify(over)
    assert signature_checks == []


def _with_junk_rsa_candidates(modulus_bits: int = 2048, exponent_bits: int = 17) -> Pki:
    return shaped_pki(
        ChainShape(
            extra_keys=1,
            colliding_keys=1,
            junk_modulus_bits=modulus_bits,
            junk_exponent_bits=exponent_bits,
        )
    )


def test_rsa_dnskeys_of_the_largest_size_are_tried() -> None:
    largest = _with_junk_rsa_candidates(modulus_bits=_limits.MAX_RSA_MODULUS_BITS)

    assert verify(largest).member.user == "alice"


def test_an_rsa_dnskey_one_bit_too_large_is_refused(signature_checks: list[int]) -> None:
    over = _with_junk_rsa_candidates(modulus_bits=_limits.MAX_RSA_MODULUS_BITS + 1)

    with pytest.raises(veraid.ChainLimitError, match=r"4097 bits \(at most 4096\)"):
        verify(over)
    assert signature_checks == []


def test_rsa_dnskeys_with_the_longest_exponent_are_tried() -> None:
    longest = _with_junk_rsa_candidates(exponent_bits=_limits.MAX_RSA_EXPONENT_BITS)

    assert verify(longest).member.user == "alice"


def test_an_rsa_dnskey_exponent_one_bit_too_long_is_refused() -> None:
    over = _with_junk_rsa_candidates(exponent_bits=_limits.MAX_RSA_EXPONENT_BITS + 1)

    with pytest.raises(veraid.ChainLimitError, match=r"34-bit exponent \(at most 33\)"):
        verify(over)


# --- Signature cost ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_4096_keys() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=4096) for _ in range(3)]


def test_a_chain_costing_the_most_verifies(
    rsa_4096_keys: list[rsa.RSAPrivateKey], signature_checks: list[int]
) -> None:
    # 6 RRsets x 4 RRSIGs, each checked with one RSA-4096 key (cost 4): 96.
    assert _limits.MAX_SIGNATURE_COST == 6 * 4 * 4
    full = shaped_pki(ChainShape(rrsigs=4), zone_keys=rsa_4096_keys)

    assert verify(full).member.user == "alice"
    assert len(signature_checks) == 24


def test_a_chain_costing_more_is_refused_before_any_check(
    rsa_4096_keys: list[rsa.RSAPrivateKey], signature_checks: list[int]
) -> None:
    # The apex zone's key has an 18-bit exponent: each check with it costs 5, not 4. That is
    # the smallest step over the budget this construction allows (2 x 4 RRSIGs per zone key).
    apex_key = rsa_key_with_exponent(4096, (1 << 17) + 3)
    keys = [*rsa_4096_keys[:2], apex_key]
    over = shaped_pki(ChainShape(rrsigs=4), zone_keys=keys)

    with pytest.raises(veraid.ChainLimitError, match=r"cost 104 RSA-2048 verifications"):
        verify(over)
    assert signature_checks == []


# --- Bloated chains ---------------------------------------------------------------------------


def test_a_bloated_chain_is_refused_within_the_cpu_bound() -> None:
    pki = make_pki()
    bundle = bloated_signature_bundle(organisation(pki))
    assert len(bundle) < 32 * 1024

    def verify_bloated() -> None:
        with pytest.raises(veraid.ChainLimitError):
            verify_signature(pki, bundle)

    assert cpu_seconds(verify_bloated) < CPU_BOUND_SECONDS
    with pytest.raises(veraid.ChainLimitError):
        veraid.read_signature_bundle(bundle)


def test_a_bloated_chain_within_the_byte_limits_is_refused_within_the_cpu_bound() -> None:
    # As many junk records as the byte limits let in: the answer count refuses them, read
    # from the header before any is parsed.
    pki = make_pki()
    bundle = bloated_signature_bundle(organisation(pki), junk_keys=350, junk_rrsigs=40)
    # The bundle decodes: its chain is within the byte limits.
    assert veraid.read_signature_bundle(bundle).member.user == "mallory"

    def verify_bloated() -> None:
        with pytest.raises(veraid.ChainLimitError, match=r"hold 402 answer records"):
            verify_signature(pki, bundle)

    assert cpu_seconds(verify_bloated) < CPU_BOUND_SECONDS


# --- Bundles ----------------------------------------------------------------------------------


def _elements(data: bytes) -> int:
    """The DER elements the bundle check counts (the smallest limit it passes)."""
    low, high = 1, len(data)
    while low < high:
        middle = (low + high) // 2
        try:
            _der.check_definite_lengths(data, middle)
        except _der.TooManyElementsError:
            low = middle + 1
        else:
            high = middle
    return low


def _with_nulls(pki: Pki, nulls: int) -> bytes:
    # One extra signed attribute whose value SET holds ``nulls`` NULLs.
    value = b"".join([b"\x05\x00"] * nulls)
    return member_signature_with(pki, extra_attributes=[("1.2.3.4", value)])


def test_a_bundle_with_the_most_der_elements_verifies(pki: Pki) -> None:
    base = _elements(_with_nulls(pki, 1))
    bundle = _with_nulls(pki, 1 + _limits.MAX_DER_ELEMENTS - base)

    assert _elements(bundle) == _limits.MAX_DER_ELEMENTS
    assert verify_signature(pki, bundle).member.user == "alice"


def test_one_der_element_too_many_is_refused(pki: Pki) -> None:
    base = _elements(_with_nulls(pki, 1))
    bundle = _with_nulls(pki, 2 + _limits.MAX_DER_ELEMENTS - base)

    with pytest.raises(veraid.LimitError, match="more than 256 DER elements"):
        verify_signature(pki, bundle)
    with pytest.raises(veraid.LimitError):
        veraid.read_signature_bundle(bundle)


def test_thousands_of_signed_attributes_are_refused_within_the_cpu_bound(pki: Pki) -> None:
    attributes = [(f"1.2.3.{i}", b"\x05\x00") for i in range(6000)]
    bundle = member_signature_with(pki, extra_attributes=attributes)

    def verify_flood() -> None:
        with pytest.raises(veraid.LimitError):
            verify_signature(pki, bundle)

    assert cpu_seconds(verify_flood) < CPU_BOUND_SECONDS


def _attributes(count: int) -> list[tuple[str, bytes]]:
    return [(f"1.2.3.{i}", core.OctetString(b"x" * 100).dump()) for i in range(count)]


def test_the_most_signed_attributes_verify(pki: Pki) -> None:
    # Content type, message digest and the VeraId metadata, then the extra ones.
    bundle = member_signature_with(
        pki, extra_attributes=_attributes(_limits.MAX_SIGNED_ATTRIBUTES - 3)
    )

    assert verify_signature(pki, bundle).member.user == "alice"


def test_one_signed_attribute_too_many_is_refused(pki: Pki) -> None:
    bundle = member_signature_with(
        pki, extra_attributes=_attributes(_limits.MAX_SIGNED_ATTRIBUTES - 2)
    )

    with pytest.raises(veraid.LimitError, match=r"17 signed attributes \(at most 16\)"):
        verify_signature(pki, bundle)


@pytest.fixture(scope="module")
def other_certificates() -> list[bytes]:
    return [make_pki().member_certificate for _ in range(_limits.MAX_SIGNED_DATA_CERTIFICATES)]


def test_the_most_certificates_in_the_signature_verify(
    pki: Pki, other_certificates: list[bytes]
) -> None:
    others = other_certificates[: _limits.MAX_SIGNED_DATA_CERTIFICATES - 1]
    bundle = member_signature_with(pki, certificates=others)

    assert verify_signature(pki, bundle).member.user == "alice"


def test_one_certificate_too_many_in_the_signature_is_refused(
    pki: Pki, other_certificates: list[bytes]
) -> None:
    bundle = member_signature_with(pki, certificates=other_certificates)

    count, limit = len(other_certificates) + 1, _limits.MAX_SIGNED_DATA_CERTIFICATES
    with pytest.raises(veraid.LimitError, match=rf"{count} certificates \(at most {limit}\)"):
        verify_signature(pki, bundle)
    with pytest.raises(veraid.LimitError):
        veraid.read_signature_bundle(bundle)


# A certificate at each certificate limit plus ``over`` (bytes or DER elements), and what
# the refusal of one over it says.
CERTIFICATE_LIMITS: dict[str, tuple[Callable[[Pki, int], bytes], str]] = {
    "bytes": (
        lambda pki, over: organisation_certificate_of_size(
            pki, _limits.MAX_CERTIFICATE_BYTES + over
        ),
        r"4097 bytes \(at most 4096\)",
    ),
    "DER elements": (
        lambda pki, over: organisation_certificate_with_elements(
            pki, _limits.MAX_CERTIFICATE_ELEMENTS + over
        ),
        "more than 128 DER elements",
    ),
}


@pytest.mark.parametrize("limit", CERTIFICATE_LIMITS)
def test_the_largest_certificate_verifies(pki: Pki, limit: str) -> None:
    certificate = CERTIFICATE_LIMITS[limit][0](pki, 0)
    largest = with_organisation_certificate(pki, certificate, issue=True)

    bundle = largest.member_signature(encapsulate=True)

    assert verify_signature(largest, bundle).member.user == "alice"


@pytest.mark.parametrize("limit", CERTIFICATE_LIMITS)
def test_a_certificate_one_over_a_limit_is_refused(pki: Pki, limit: str) -> None:
    issue, refusal = CERTIFICATE_LIMITS[limit]
    over = with_organisation_certificate(pki, issue(pki, 1), issue=False)

    with pytest.raises(veraid.LimitError, match=refusal):
        verify_signature(over, member_signature_with(over))


def test_certificates_of_junk_extensions_are_refused_quickly(pki: Pki) -> None:
    # Under 4 KiB of empty extensions, ~1000 elements: each certificate would otherwise cost
    # ~8 ms of CPU to decode, then be passed over as not the signer.
    certificate = organisation_certificate_with_elements(pki, 1000)
    assert len(certificate) <= _limits.MAX_CERTIFICATE_BYTES
    junk = _limits.MAX_SIGNED_DATA_CERTIFICATES - 1  # the rest of the room beside the signer's
    bundle = member_signature_with(pki, certificates=[certificate] * junk)

    def refuse() -> None:
        with pytest.raises(veraid.LimitError, match="Member certificate has more than 128"):
            verify_signature(pki, bundle)

    assert cpu_seconds(refuse) < CPU_BOUND_SECONDS


@pytest.mark.parametrize(
    ("exponent", "verifies"),
    [((1 << 32) + 1, True), ((1 << 33) + 1, False)],
    ids=["33-bit exponent", "34-bit exponent"],
)
def test_member_keys_with_long_exponents(pki: Pki, exponent: int, verifies: bool) -> None:
    key = rsa_key_with_exponent(2048, exponent)
    member = veraid.issue_member_certificate(
        "alice", key.public_key(), pki.org_certificate, rsa_key(3), pki.period.start, pki.period.end
    )
    bundle = member_signature_with(pki, member_certificate=member, member_key=key)

    if verifies:
        assert verify_signature(pki, bundle).member.user == "alice"
    else:
        with pytest.raises(veraid.UnsupportedKeyError, match="34 bits"):
            verify_signature(pki, bundle)


def test_a_member_key_as_slow_as_a_signature_is_refused_quickly(pki: Pki) -> None:
    key = long_exponent_key()
    member = veraid.issue_member_certificate(
        "alice", key.public_key(), pki.org_certificate, rsa_key(3), pki.period.start, pki.period.end
    )
    bundle = member_signature_with(pki, member_certificate=member, member_key=key)

    with pytest.raises(veraid.UnsupportedKeyError, match=r"exponent of 30\d\d bits"):
        verify_signature(pki, bundle)


@pytest.mark.parametrize("bits", [1024, 3000])
def test_member_keys_of_sizes_veraid_does_not_allow_are_refused(pki: Pki, bits: int) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    member = veraid.issue_member_certificate(
        "alice", key.public_key(), pki.org_certificate, rsa_key(3), pki.period.start, pki.period.end
    )
    bundle = member_signature_with(pki, member_certificate=member, member_key=key)

    with pytest.raises(veraid.UnsupportedKeyError, match=f"RSA key of {bits} bits"):
        verify_signature(pki, bundle)
