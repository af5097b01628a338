"""The veraid library on its own bytes: production, verification and every refusal."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import timedelta

import dns.message
import dns.rdatatype
import dns.rrset
import pytest

import veraid
from veraid import _asn1
from veraid import _der as der
from veraid._bundles import _signature_bundle
from veraid._cms import sign_signed_data
from veraid._dns import validate_chain
from veraid._pki import _issue, load_certificate
from veraid_helpers import (
    MEMBER_KEY,
    ORG,
    ORG_KEY,
    OTHER_ORG_KEY,
    PLAINTEXT,
    SERVICE,
    Pki,
    make_pki,
    rsa_key,
    txt_rdata,
    with_chain,
)

OTHER_SERVICE = "1.3.6.1.4.1.58708.1.99"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def verify(pki: Pki, bundle: bytes, **kwargs: object) -> veraid.SignatureVerification:
    options: dict[str, object] = {"plaintext": PLAINTEXT, "trust_anchors": pki.trust_anchors}
    options.update(kwargs)
    return veraid.verify_signature_bundle(bundle, SERVICE, pki.now, **options)  # type: ignore[arg-type]


# --- Reading without verifying ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "member"),
    [
        (lambda pki: pki.member_signature(encapsulate=True), veraid.Member(ORG, "alice")),
        (lambda pki: pki.org_signature("bob", encapsulate=True), veraid.Member(ORG, "bob")),
        (lambda pki: pki.org_signature(None, encapsulate=True), veraid.Member(ORG, None)),
    ],
    ids=["member", "organisation for a user", "organisation bot"],
)
def test_read_reports_what_verification_confirms(
    pki: Pki, make: Callable[[Pki], bytes], member: veraid.Member
) -> None:
    bundle = make(pki)

    claimed = veraid.read_signature_bundle(bundle)

    assert claimed == veraid.UnverifiedSignatureBundle(member, PLAINTEXT)
    verified = verify(pki, bundle, plaintext=None)
    assert (verified.member, verified.plaintext) == (claimed.member, claimed.plaintext)


def test_read_gives_no_plaintext_for_a_detached_signature(pki: Pki) -> None:
    assert veraid.read_signature_bundle(pki.member_signature()).plaintext is None


def test_read_does_not_verify(pki: Pki) -> None:
    bundle = bytearray(pki.member_signature(encapsulate=True))
    bundle[-1] ^= 1  # breaks the signature, not the structure

    claimed = veraid.read_signature_bundle(bytes(bundle))

    assert claimed.member == veraid.Member(ORG, "alice")
    with pytest.raises(veraid.InvalidSignatureError):
        verify(pki, bytes(bundle), plaintext=None)


@pytest.mark.parametrize("data", [b"", b"\x30\x00", b"not DER at all"])
def test_read_refuses_what_is_not_a_bundle(data: bytes) -> None:
    with pytest.raises(veraid.MalformedError):
        veraid.read_signature_bundle(data)


# --- What verifies --------------------------------------------------------------------------


@pytest.mark.parametrize("encapsulate", [False, True])
def test_member_signature_verifies(pki: Pki, encapsulate: bool) -> None:
    bundle = pki.member_signature(encapsulate=encapsulate)

    result = verify(pki, bundle, plaintext=None if encapsulate else PLAINTEXT)

    assert result.member == veraid.Member(ORG, "alice")
    assert str(result.member) == "alice@example.com"
    assert result.plaintext == PLAINTEXT
    assert result.signed_by_member is True
    assert result.period.start <= pki.now <= result.period.end


@pytest.mark.parametrize(("user", "shown"), [("bob", "bob@example.com"), (None, "example.com")])
@pytest.mark.parametrize("encapsulate", [False, True])
def test_organisation_signature_verifies(
    pki: Pki, user: str | None, shown: str, encapsulate: bool
) -> None:
    bundle = pki.org_signature(user, encapsulate=encapsulate)

    result = verify(pki, bundle, plaintext=None if encapsulate else PLAINTEXT)

    assert result.member == veraid.Member(ORG, user)
    assert str(result.member) == shown
    assert result.signed_by_member is False
    assert result.plaintext == PLAINTEXT


def test_bot_member_signature_has_no_user() -> None:
    pki = make_pki(member_name=None)

    assert verify(pki, pki.member_signature()).member == veraid.Member(ORG, None)


def test_verification_over_a_period_returns_the_common_period(pki: Pki) -> None:
    required = veraid.DatePeriod(pki.now - timedelta(hours=5), pki.now + timedelta(hours=5))

    result = veraid.verify_signature_bundle(
        pki.member_signature(),
        SERVICE,
        required,
        plaintext=PLAINTEXT,
        trust_anchors=pki.trust_anchors,
    )

    # The TTL override (1 h) ends where signature, certificates and chain all end.
    assert result.period == veraid.DatePeriod(pki.period.end - timedelta(hours=1), pki.period.end)


def test_member_id_bundle_verifies(pki: Pki) -> None:
    result = veraid.verify_member_id_bundle(
        pki.member_id_bundle, SERVICE, pki.now, trust_anchors=pki.trust_anchors
    )

    assert result.member == veraid.Member(ORG, "alice")
    assert result.period == veraid.DatePeriod.at(pki.now)


def test_cache_gives_the_same_result_and_keeps_the_period(pki: Pki) -> None:
    cache = veraid.VerificationCache()
    bundle = pki.member_signature()

    first = verify(pki, bundle, cache=cache)
    second = verify(pki, bundle, cache=cache)

    assert first == second == verify(pki, bundle)
    later = pki.period.end + timedelta(seconds=1)
    with pytest.raises(veraid.ValidityPeriodError):
        veraid.verify_signature_bundle(
            bundle,
            SERVICE,
            later,
            plaintext=PLAINTEXT,
            trust_anchors=pki.trust_anchors,
            cache=cache,
        )


def test_cached_chain_is_not_valid_beyond_its_signatures() -> None:
    pki = make_pki()
    short = veraid.DatePeriod(pki.now - timedelta(minutes=1), pki.now + timedelta(minutes=1))
    short_pki = make_pki(now=pki.now, chain_period=short)
    cache = veraid.VerificationCache()
    bundle = short_pki.member_signature()
    verify(short_pki, bundle, cache=cache)

    with pytest.raises(veraid.ValidityPeriodError, match="DNSSEC"):
        veraid.verify_signature_bundle(
            bundle,
            SERVICE,
            pki.now + timedelta(minutes=30),
            plaintext=PLAINTEXT,
            trust_anchors=short_pki.trust_anchors,
            cache=cache,
        )


# --- TXT rdata ------------------------------------------------------------------------------


def test_txt_rdata_names_the_key_and_ttl() -> None:
    text = txt_rdata(timedelta(hours=2), SERVICE)
    key = rsa_key(ORG_KEY).public_key()

    parsed = veraid.parse_txt_rdata(text)

    # The expected key id, computed independently: SHA-256 of the SPKI, padded base64.
    spki = load_certificate(make_pki().org_certificate, "org").spki

    assert parsed == veraid.TxtRdata(
        1, base64.b64encode(hashlib.sha256(spki).digest()).decode(), 7200, SERVICE
    )
    assert text.startswith("1 ")
    assert text.split()[1].endswith("=")
    assert key.key_size == 2048


def test_txt_rdata_clamps_ttl_override_to_90_days() -> None:
    assert veraid.parse_txt_rdata("1 abc= 999999999").ttl_override == 90 * 24 * 3600


@pytest.mark.parametrize("text", ["1 abc=", "9 abc= 60", "1 abc= -1", "1 abc= 1h", ""])
def test_malformed_txt_rdata_is_refused(text: str) -> None:
    with pytest.raises(veraid.TxtRecordError):
        veraid.parse_txt_rdata(text)


def test_txt_rdata_refuses_ttl_override_over_90_days() -> None:
    with pytest.raises(veraid.TxtRecordError):
        txt_rdata(timedelta(days=91))


# --- Negative cases -------------------------------------------------------------------------


def test_wrong_service_oid(pki: Pki) -> None:
    with pytest.raises(veraid.ServiceMismatchError, match="different service"):
        veraid.verify_signature_bundle(
            pki.member_signature(),
            OTHER_SERVICE,
            pki.now,
            plaintext=PLAINTEXT,
            trust_anchors=pki.trust_anchors,
        )


def _past(pki: Pki) -> veraid.DatePeriod:
    return veraid.DatePeriod(pki.now - timedelta(days=2), pki.now - timedelta(days=1))


def _future(pki: Pki) -> veraid.DatePeriod:
    return veraid.DatePeriod(pki.now + timedelta(days=1), pki.now + timedelta(days=2))


WHEN = [pytest.param(_past, id="past"), pytest.param(_future, id="future")]


@pytest.mark.parametrize("when", WHEN)
def test_signature_period_outside(pki: Pki, when: Callable[[Pki], veraid.DatePeriod]) -> None:
    bundle = pki.member_signature(period=when(pki))

    with pytest.raises(veraid.ValidityPeriodError, match="Signature validity"):
        verify(pki, bundle)


@pytest.mark.parametrize("when", WHEN)
def test_member_certificate_period_outside(
    pki: Pki, when: Callable[[Pki], veraid.DatePeriod]
) -> None:
    wide = veraid.DatePeriod(pki.now - timedelta(days=3), pki.now + timedelta(days=3))
    bad = make_pki(now=pki.now, member_period=when(pki), org_period=wide)

    with pytest.raises(veraid.ValidityPeriodError, match="Member certificate validity"):
        verify(bad, bad.member_signature())


@pytest.mark.parametrize("when", WHEN)
def test_organisation_certificate_period_outside(
    pki: Pki, when: Callable[[Pki], veraid.DatePeriod]
) -> None:
    period = when(pki)
    org = veraid.issue_organisation_certificate(ORG, rsa_key(ORG_KEY), period.start, period.end)
    # An organisation signature: a member certificate could not outlive this one.
    bad = Pki(pki.now, pki.period, pki.chain, org, pki.member_certificate)

    with pytest.raises(veraid.ValidityPeriodError, match="Organisation certificate validity"):
        verify(bad, bad.org_signature("bob"))


@pytest.mark.parametrize("when", WHEN)
def test_rrsig_period_outside(pki: Pki, when: Callable[[Pki], veraid.DatePeriod]) -> None:
    bad = make_pki(now=pki.now, chain_period=when(pki))

    with pytest.raises(veraid.ValidityPeriodError, match="DNSSEC signatures"):
        verify(bad, bad.member_signature())


def test_ttl_override_excludes_the_chain_period(pki: Pki) -> None:
    # Everything is valid for the first 30 minutes of a 2-hour period, except that the TTL
    # override only lets the chain vouch for the last hour (2 hours would do).
    start = pki.now - timedelta(minutes=10)
    required = veraid.DatePeriod(start, start + timedelta(hours=2))
    early = veraid.DatePeriod(start, start + timedelta(minutes=30))

    def outcome(ttl: timedelta) -> veraid.SignatureVerification:
        bad = make_pki(
            now=pki.now,
            txt_records=[txt_rdata(ttl)],
            chain_period=early,
            org_period=required,
            member_period=required,
        )
        sig_period = veraid.DatePeriod(start, required.end)
        bundle = bad.member_signature(period=sig_period)
        return veraid.verify_signature_bundle(
            bundle, SERVICE, required, plaintext=PLAINTEXT, trust_anchors=bad.trust_anchors
        )

    assert outcome(timedelta(hours=2)).period.end <= early.end
    with pytest.raises(veraid.ValidityPeriodError, match="DNSSEC signatures"):
        outcome(timedelta(hours=1))


def test_tampered_plaintext(pki: Pki) -> None:
    with pytest.raises(veraid.InvalidSignatureError, match="digest"):
        verify(pki, pki.member_signature(), plaintext=PLAINTEXT + b"!")


def test_tampered_signature(pki: Pki) -> None:
    bundle = bytearray(pki.member_signature())
    bundle[-1] ^= 1  # the last byte of a SignatureBundle is the CMS signature's

    with pytest.raises(veraid.InvalidSignatureError, match="does not verify"):
        verify(pki, bytes(bundle))


def test_plaintext_both_encapsulated_and_detached(pki: Pki) -> None:
    with pytest.raises(veraid.InvalidSignatureError, match="either"):
        verify(pki, pki.member_signature(encapsulate=True), plaintext=PLAINTEXT)


def test_member_certificate_issued_by_another_organisation(pki: Pki) -> None:
    other_org = veraid.issue_organisation_certificate(
        ORG, rsa_key(OTHER_ORG_KEY), pki.period.start, pki.period.end
    )
    member = veraid.issue_member_certificate(
        "alice",
        rsa_key(MEMBER_KEY).public_key(),
        other_org,
        rsa_key(OTHER_ORG_KEY),
        pki.period.start,
        pki.period.end,
    )
    bad = Pki(pki.now, pki.period, pki.chain, pki.org_certificate, member)

    with pytest.raises(veraid.CertificateError, match="organisation key"):
        verify(bad, bad.member_signature())


def test_txt_key_id_not_matching_the_organisation_key(pki: Pki) -> None:
    bad = make_pki(now=pki.now, txt_records=[txt_rdata(key=OTHER_ORG_KEY)])

    with pytest.raises(veraid.TxtRecordError, match="organisation key"):
        verify(bad, bad.member_signature())


def test_txt_record_only_for_another_service(pki: Pki) -> None:
    bad = make_pki(now=pki.now, txt_records=[txt_rdata(service=OTHER_SERVICE)])

    with pytest.raises(veraid.ServiceMismatchError, match="other services"):
        verify(bad, bad.member_signature())


def test_service_specific_txt_record_takes_precedence(pki: Pki) -> None:
    records = [txt_rdata(timedelta(hours=1)), txt_rdata(timedelta(minutes=5), SERVICE)]
    good = make_pki(now=pki.now, txt_records=records)
    required = veraid.DatePeriod(pki.now - timedelta(hours=5), pki.now + timedelta(hours=5))

    result = veraid.verify_signature_bundle(
        good.member_signature(),
        SERVICE,
        required,
        plaintext=PLAINTEXT,
        trust_anchors=good.trust_anchors,
    )

    assert result.period.end - result.period.start == timedelta(minutes=5)


def test_two_matching_txt_records(pki: Pki) -> None:
    bad = make_pki(now=pki.now, txt_records=[txt_rdata(), txt_rdata(timedelta(hours=2))])

    with pytest.raises(veraid.TxtRecordError, match="Several"):
        verify(bad, bad.member_signature())


def _question(response: bytes) -> tuple[str, str]:
    message = dns.message.from_wire(response)
    question = message.question[0]
    return question.name.to_text(), dns.rdatatype.to_text(question.rdtype)


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [("com.", "DS"), ("example.com.", "DS"), (".", "DNSKEY"), ("com.", "DNSKEY")],
)
def test_missing_ds_or_dnskey(pki: Pki, name: str, rdtype: str) -> None:
    responses = [r for r in pki.chain.responses if _question(r) != (name, rdtype)]
    assert len(responses) == len(pki.chain.responses) - 1
    bad = with_chain(pki, responses)

    with pytest.raises(veraid.DnssecError, match=f"no {rdtype} response for {name}"):
        verify(bad, bad.member_signature())


def test_bad_rrsig(pki: Pki) -> None:
    def tamper(response: bytes) -> bytes:
        if _question(response) != ("_veraid.example.com.", "TXT"):
            return response
        message = dns.message.from_wire(response)
        rrsigs = message.answer[1]
        rrsig = rrsigs[0]
        signature = bytearray(rrsig.signature)
        signature[0] ^= 1
        message.answer[1] = dns.rrset.from_rdata(
            rrsigs.name, rrsigs.ttl, rrsig.replace(signature=bytes(signature))
        )
        return message.to_wire()

    bad = with_chain(pki, [tamper(r) for r in pki.chain.responses])

    with pytest.raises(veraid.DnssecError, match="No valid RRSIG"):
        verify(bad, bad.member_signature())


def test_wrong_trust_anchor(pki: Pki) -> None:
    with pytest.raises(veraid.DnssecError, match="trust anchors"):
        verify(pki, pki.member_signature(), trust_anchors=veraid.IANA_TRUST_ANCHORS)


@pytest.mark.parametrize("name", ["a@b", "a\tb", "a\rb", "a\nb"])
def test_user_names_with_forbidden_characters_are_not_issued(pki: Pki, name: str) -> None:
    with pytest.raises(veraid.InvalidNameError):
        veraid.issue_member_certificate(
            name,
            rsa_key(MEMBER_KEY).public_key(),
            pki.org_certificate,
            rsa_key(ORG_KEY),
            pki.period.start,
            pki.period.end,
        )


@pytest.mark.parametrize("name", ["a@b", "a\tb", "a\rb", "a\nb"])
def test_user_names_with_forbidden_characters_do_not_verify(pki: Pki, name: str) -> None:
    member = _issue(
        common_name=name,
        subject_key=rsa_key(MEMBER_KEY).public_key(),
        issuer_key=rsa_key(ORG_KEY),
        issuer=load_certificate(pki.org_certificate, "o", issuer=True),
        start=pki.period.start,
        end=pki.period.end,
        is_ca=False,
    )
    bad = Pki(pki.now, pki.period, pki.chain, pki.org_certificate, member)

    with pytest.raises(veraid.InvalidNameError):
        verify(bad, bad.member_signature())
    with pytest.raises(veraid.InvalidNameError):
        veraid.verify_member_id_bundle(
            bad.member_id_bundle, SERVICE, pki.now, trust_anchors=pki.trust_anchors
        )


def test_user_name_with_space_is_allowed() -> None:
    pki = make_pki(member_name="Alice Smith")

    assert verify(pki, pki.member_signature()).member.user == "Alice Smith"


@pytest.mark.parametrize("kind", ["signature", "member-id"])
def test_version_1(pki: Pki, kind: str) -> None:
    if kind == "signature":
        decoded = _asn1.SignatureBundle.load(pki.member_signature())
    else:
        decoded = _asn1.MemberIdBundle.load(pki.member_id_bundle)
    decoded["version"] = 1

    encoded = decoded.dump(force=True)
    verifier = verify if kind == "signature" else _verify_member_id

    with pytest.raises(veraid.UnsupportedVersionError, match=r"version \(1\)"):
        verifier(pki, encoded)


def _verify_member_id(pki: Pki, bundle: bytes) -> object:
    return veraid.verify_member_id_bundle(bundle, SERVICE, pki.now, trust_anchors=pki.trust_anchors)


@pytest.mark.parametrize("cut", [1, 10, 500])
def test_truncated_der(pki: Pki, cut: int) -> None:
    with pytest.raises(veraid.MalformedError):
        verify(pki, pki.member_signature()[:-cut])
    with pytest.raises(veraid.MalformedError):
        veraid.verify_member_id_bundle(pki.member_id_bundle[:-cut], SERVICE, pki.now)


def test_trailing_garbage(pki: Pki) -> None:
    with pytest.raises(veraid.MalformedError, match="malformed"):
        verify(pki, pki.member_signature() + b"\x00")
    with pytest.raises(veraid.MalformedError, match="malformed"):
        veraid.verify_member_id_bundle(pki.member_id_bundle + b"\x00", SERVICE, pki.now)


def test_wrong_outer_tag(pki: Pki) -> None:
    bundle = b"\x31" + pki.member_signature()[1:]  # SET instead of SEQUENCE

    with pytest.raises(veraid.MalformedError):
        verify(pki, bundle)


def test_wrong_field_tag(pki: Pki) -> None:
    decoded = _asn1.MemberIdBundle.load(pki.member_id_bundle)
    encoded = bytearray(decoded.dump())
    # The version's [0] tag sits right after the outer header; make it [5].
    header = 2 if encoded[1] < 0x80 else 2 + (encoded[1] & 0x7F)
    assert encoded[header] == 0x80
    encoded[header] = 0x85

    with pytest.raises(veraid.MalformedError):
        veraid.verify_member_id_bundle(bytes(encoded), SERVICE, pki.now)


def _with_extra_field(sequence: bytes) -> bytes:
    """``sequence`` (short or long form header) with an INTEGER after its last field."""
    return der.tlv(der.SEQUENCE, der.contents_of(sequence), b"\x02\x01\x00")


def _signed_data_with_extra_field(pki: Pki) -> bytes:
    bundle = _asn1.SignatureBundle.load(pki.member_signature())
    content_info = _asn1.der_from_implicit(bundle["signature"])
    signed_data = _asn1.ContentInfo.load(content_info)["content"].dump()  # [0] EXPLICIT
    inner = _with_extra_field(der.contents_of(signed_data))
    rebuilt = der.tlv(
        der.SEQUENCE,
        _asn1.ContentInfo.load(content_info)["content_type"].dump(),
        der.tlv(0xA0, inner),
    )
    return _signature_bundle(pki.chain.responses, pki.org_certificate, rebuilt)


def test_elements_after_the_last_field_are_refused(pki: Pki) -> None:
    # asn1crypto keeps them silently, even with strict=True.
    member_id = _with_extra_field(pki.member_id_bundle)
    signature = _with_extra_field(pki.member_signature())
    assert len(_asn1.MemberIdBundle.load(member_id, strict=True)) == 5

    with pytest.raises(veraid.MalformedError, match=r"MemberIdBundle is malformed: .*last field"):
        _verify_member_id(pki, member_id)
    with pytest.raises(veraid.MalformedError, match=r"SignatureBundle is malformed: .*last field"):
        verify(pki, signature)
    with pytest.raises(veraid.MalformedError, match=r"SignedData is malformed: .*last field"):
        verify(pki, _signed_data_with_extra_field(pki))


def test_signature_metadata_with_an_element_after_its_last_field_is_refused(pki: Pki) -> None:
    metadata = _asn1.SignatureMetadata(
        {"service_oid": SERVICE, "validity_period": {"start": pki.period.start, "end": pki.now}}
    ).dump()
    extra = _with_extra_field(metadata)

    bundle = _signature_with_attributes(pki, [(_asn1.OID_SIGNATURE_METADATA, extra)])
    with pytest.raises(veraid.MalformedError, match="Signature metadata is malformed"):
        verify(pki, bundle)


# --- Encoding -------------------------------------------------------------------------------


@pytest.mark.parametrize("encapsulate", [False, True])
def test_produced_signature_bundles_are_der_of_the_schemas(pki: Pki, encapsulate: bool) -> None:
    for bundle in (
        pki.member_signature(encapsulate=encapsulate),
        pki.org_signature("bob", encapsulate=encapsulate),
    ):
        decoded = _asn1.SignatureBundle.load(bundle, strict=True)

        assert decoded.dump(force=True) == bundle
        assert decoded["signature"]["content"]["version"].native == "v1"


def test_produced_member_id_bundle_is_der_of_the_schema(pki: Pki) -> None:
    bundle = pki.member_id_bundle
    decoded = _asn1.MemberIdBundle.load(bundle, strict=True)

    assert decoded.dump(force=True) == bundle
    assert sorted(item.native for item in decoded["dnssec_chain"]) == sorted(pki.chain.responses)
    assert _asn1.der_from_implicit(decoded["member_certificate"]) == pki.member_certificate


def _signature_with_attributes(pki: Pki, attributes: list[tuple[str, bytes]]) -> bytes:
    member = load_certificate(pki.member_certificate, "member")
    content_info = sign_signed_data(
        PLAINTEXT,
        rsa_key(MEMBER_KEY),
        member,
        certificates=(member.der,),
        extra_attributes=attributes,
        encapsulate=False,
    )
    return _signature_bundle(pki.chain.responses, pki.org_certificate, content_info)


def test_signature_metadata_missing(pki: Pki) -> None:
    with pytest.raises(veraid.InvalidSignatureError, match="metadata"):
        verify(pki, _signature_with_attributes(pki, []))


def test_signature_metadata_period_ending_before_it_starts(pki: Pki) -> None:
    metadata = _asn1.SignatureMetadata(
        {"service_oid": SERVICE, "validity_period": {"start": pki.period.end, "end": pki.now}}
    ).dump()

    with pytest.raises(veraid.ValidityPeriodError, match="ends before it starts"):
        verify(pki, _signature_with_attributes(pki, [(_asn1.OID_SIGNATURE_METADATA, metadata)]))


def test_signing_refuses_a_start_after_the_end(pki: Pki) -> None:
    with pytest.raises(veraid.ValidityPeriodError, match="after its expiry"):
        veraid.sign_as_member(
            PLAINTEXT, SERVICE, pki.member_id_bundle, rsa_key(MEMBER_KEY), pki.period.end, pki.now
        )


def test_rsa_pss_parameters_are_honoured() -> None:
    from asn1crypto import algos
    from cryptography.hazmat.primitives.asymmetric import padding

    from veraid._algorithms import signature_scheme

    algorithm = algos.SignedDigestAlgorithm(
        {
            "algorithm": "rsassa_pss",
            "parameters": {
                "hash_algorithm": {"algorithm": "sha384"},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha512"}},
                "salt_length": 48,
            },
        }
    )

    scheme, hash_algorithm = signature_scheme(algorithm, veraid.InvalidSignatureError)

    assert isinstance(scheme, padding.PSS)
    assert scheme._salt_length == 48
    assert scheme.mgf._algorithm.name == "sha512"
    assert hash_algorithm.name == "sha384"


def test_mock_chain_needs_one_key_per_zone(pki: Pki) -> None:
    with pytest.raises(veraid.DnssecError, match="3 zone keys"):
        veraid.generate_mock_chain(ORG, [txt_rdata()], pki.period, [rsa_key(0)])


def test_mock_chain_on_a_deeper_domain_with_its_own_keys(pki: Pki) -> None:
    domain = "members.example.com"
    chain = veraid.generate_mock_chain(domain, [txt_rdata()], pki.period)
    org = veraid.issue_organisation_certificate(
        domain, rsa_key(ORG_KEY), pki.period.start, pki.period.end
    )
    deeper = Pki(pki.now, pki.period, chain, org, pki.member_certificate)

    result = verify(deeper, deeper.org_signature("bob"))

    assert result.member == veraid.Member(domain, "bob")
    assert len(chain.responses) == 4 + 3 + 1  # DNSKEY per zone, DS below the root, TXT


def _member_id_fields(pki: Pki) -> list[bytes]:
    decoded = _asn1.MemberIdBundle.load(pki.member_id_bundle)
    return [decoded[name].dump() for name, _, _ in _asn1.MemberIdBundle._fields]


def test_non_minimal_length_is_refused(pki: Pki) -> None:
    fields = _member_id_fields(pki)
    assert fields[0] == b"\x80\x01\x00"
    fields[0] = b"\x80\x81\x01\x00"  # the same version, its length in long form
    bundle = der.tlv(der.SEQUENCE, *fields)
    assert _asn1.MemberIdBundle.load(bundle, strict=True)["version"].native == 0

    with pytest.raises(veraid.MalformedError, match="shortest form"):
        _verify_member_id(pki, bundle)


def test_indefinite_length_is_refused(pki: Pki) -> None:
    bundle = b"\x30\x80" + b"".join(_member_id_fields(pki)) + b"\x00\x00"
    assert _asn1.MemberIdBundle.load(bundle, strict=True)["version"].native == 0

    with pytest.raises(veraid.MalformedError, match="indefinite length"):
        _verify_member_id(pki, bundle)


def test_two_txt_responses(pki: Pki) -> None:
    other = make_pki(now=pki.now, txt_records=[txt_rdata(timedelta(minutes=1))])
    txt = [r for r in other.chain.responses if _question(r)[1] == "TXT"]
    bad = with_chain(pki, [*pki.chain.responses, *txt])

    with pytest.raises(veraid.DnssecError, match="several TXT responses"):
        verify(bad, bad.member_signature())


def test_zone_responses_are_looked_up_first_match(pki: Pki) -> None:
    # As in @relaycorp/veraid's offline resolver: a later copy of a zone's response is unused.
    # (validate_chain directly: bundles are DER, whose SET OF order is by bytes.)
    dnskeys = [r for r in pki.chain.responses if _question(r) == ("com.", "DNSKEY")]
    assert len(dnskeys) == 1
    garbled = bytearray(dnskeys[0])
    garbled[-1] ^= 1  # in the RRSIG's signature
    anchors = pki.trust_anchors

    validation = validate_chain([*pki.chain.responses, bytes(garbled)], ORG, anchors)

    assert validation == validate_chain(pki.chain.responses, ORG, anchors)
    with pytest.raises(veraid.DnssecError, match="No valid RRSIG"):
        validate_chain([bytes(garbled), *pki.chain.responses], ORG, anchors)


def test_issuer_basic_constraints_are_read_whatever_the_path_length(pki: Pki) -> None:
    # veraid-js writes pathLenConstraint 0 with cA false, which cryptography refuses to read.
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    member = asn1_x509.Certificate.load(pki.member_certificate)
    tbs = member["tbs_certificate"]
    for extension in tbs["extensions"]:
        if extension["extn_id"].native == "basic_constraints":
            extension["extn_value"] = asn1_x509.BasicConstraints(
                {"ca": False, "path_len_constraint": 0}
            )
    tbs_der = tbs.dump(force=True)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = rsa_key(ORG_KEY).sign(tbs_der, pss, hashes.SHA256())
    quirky = asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": member["signature_algorithm"],
            "signature_value": signature,
        }
    ).dump(force=True)
    with pytest.raises(ValueError, match="path_length"):
        x509.load_der_x509_certificate(quirky).extensions  # noqa: B018

    assert load_certificate(quirky, "member", issuer=True).is_ca is False
    assert load_certificate(pki.org_certificate, "org", issuer=True).is_ca is True
