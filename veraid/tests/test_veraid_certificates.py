"""Certificate decoding: what real issuers write is accepted, everything else DER forbids is not.

``@relaycorp/veraid`` writes about one serial number in 512 with a redundant leading zero
(``tests/test_veraid_interop.py`` finds real ones). Here such certificates are made by hand:
a Python-issued certificate whose TBS is rebuilt with one field changed and signed again by
the issuer's key, so each case stays covered without Node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import veraid
from veraid import _asn1
from veraid import _der as der
from veraid._bundles import _metadata, _signature_bundle
from veraid._cms import sign_signed_data
from veraid._pki import load_certificate, verify_issued_by
from veraid_helpers import (
    MEMBER_KEY,
    ORG,
    ORG_KEY,
    PLAINTEXT,
    SERVICE,
    Pki,
    make_pki,
    rsa_key,
)

Fields = dict[str, bytes]

# Serial numbers as @relaycorp/veraid writes them one time in 512: 0x00, then below 0x80
# (one time in 65,536, two zero octets).
ORG_SERIAL = bytes.fromhex("020800051b2c3d4e5f60")
ORG_SERIAL_VALUE = 0x051B2C3D4E5F60
MEMBER_SERIAL = bytes.fromhex("020800007f0102030405")
MEMBER_SERIAL_VALUE = 0x7F0102030405


def tbs_fields(certificate: bytes) -> Fields:
    """The encoded fields of a certificate's tbsCertificate, by name, as they are."""
    tbs = asn1_x509.Certificate.load(certificate)["tbs_certificate"]
    return {name: tbs[name].dump() for name, _, _ in tbs._fields}


def sign_tbs(tbs: bytes, key: rsa.RSAPrivateKey, algorithm: bytes) -> bytes:
    """A certificate of ``tbs`` (any bytes), signed as veraid-js signs (RSA-PSS, SHA-256)."""
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = key.sign(tbs, pss, hashes.SHA256())
    return der.tlv(der.SEQUENCE, tbs, algorithm, der.tlv(0x03, b"\x00" + signature))


def resign(certificate: bytes, key: rsa.RSAPrivateKey, **changes: bytes) -> bytes:
    """``certificate`` with the TBS fields in ``changes`` replaced, signed again by ``key``."""
    fields = tbs_fields(certificate) | changes
    return sign_tbs(der.tlv(der.SEQUENCE, *fields.values()), key, fields["signature"])


def org_key() -> rsa.RSAPrivateKey:
    return rsa_key(ORG_KEY)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def padded(pki: Pki) -> Pki:
    """Organisation and member certificates whose serials both have redundant zeros."""
    org = resign(pki.org_certificate, org_key(), serial_number=ORG_SERIAL)
    member = veraid.issue_member_certificate(
        "alice", rsa_key(MEMBER_KEY).public_key(), org, org_key(), pki.period.start, pki.period.end
    )
    member = resign(member, org_key(), serial_number=MEMBER_SERIAL)
    return Pki(pki.now, pki.period, pki.chain, org, member)


def verify_member_id(pki: Pki, bundle: bytes | None = None) -> veraid.MemberIdVerification:
    return veraid.verify_member_id_bundle(
        bundle or pki.member_id_bundle, SERVICE, pki.now, trust_anchors=pki.trust_anchors
    )


def verify(pki: Pki, bundle: bytes) -> veraid.SignatureVerification:
    return veraid.verify_signature_bundle(
        bundle, SERVICE, pki.now, plaintext=PLAINTEXT, trust_anchors=pki.trust_anchors
    )


# --- The non-minimal serial number is accepted --------------------------------------------------


def test_cryptography_refuses_the_padded_certificates(padded: Pki) -> None:
    # What this module is about: without our own decoding, these would be unreadable.
    for certificate, serial in (
        (padded.org_certificate, ORG_SERIAL),
        (padded.member_certificate, MEMBER_SERIAL),
    ):
        assert serial in certificate
        with pytest.raises(ValueError, match="ParseError"):
            x509.load_der_x509_certificate(certificate)


@pytest.mark.parametrize("kind", ["org", "member"])
def test_padded_serial_is_decoded_as_its_value(padded: Pki, kind: str) -> None:
    encoded = padded.org_certificate if kind == "org" else padded.member_certificate
    serial, value = (
        (ORG_SERIAL, ORG_SERIAL_VALUE) if kind == "org" else (MEMBER_SERIAL, MEMBER_SERIAL_VALUE)
    )

    certificate = load_certificate(encoded, kind, issuer=True)

    assert certificate.serial_number == value
    assert certificate.serial == serial
    assert certificate.der == encoded
    assert certificate.tbs == encoded[4 : 4 + len(certificate.tbs)]  # the bytes as received


def test_member_id_bundle_with_padded_serials_verifies(padded: Pki) -> None:
    assert verify_member_id(padded).member == veraid.Member(ORG, "alice")


def test_member_signature_with_padded_serials_verifies(padded: Pki) -> None:
    bundle = padded.member_signature()
    # The SignerInfo names the member with its serial as encoded, as pkijs matches it.
    assert (bundle.count(ORG_SERIAL), bundle.count(MEMBER_SERIAL)) == (1, 2)

    result = verify(padded, bundle)

    assert (result.member, result.signed_by_member) == (veraid.Member(ORG, "alice"), True)


def test_organisation_signature_with_padded_serial_verifies(padded: Pki) -> None:
    bundle = padded.org_signature("bob")
    assert (bundle.count(ORG_SERIAL), bundle.count(MEMBER_SERIAL)) == (2, 0)

    result = verify(padded, bundle)

    assert (result.member, result.signed_by_member) == (veraid.Member(ORG, "bob"), False)


def test_signer_info_naming_the_serial_minimally_still_matches(padded: Pki) -> None:
    # Another implementation may re-encode the serial in its SignerInfo: the same INTEGER.
    member = load_certificate(padded.member_certificate, "member")
    content_info = sign_signed_data(
        PLAINTEXT,
        rsa_key(MEMBER_KEY),
        replace(member, serial=der.integer(MEMBER_SERIAL_VALUE)),
        certificates=(member.der,),
        extra_attributes=[
            (_asn1.OID_SIGNATURE_METADATA, _metadata(SERVICE, padded.period.start, padded.now))
        ],
        encapsulate=False,
    )
    bundle = _signature_bundle(padded.chain.responses, padded.org_certificate, content_info)
    assert bundle.count(MEMBER_SERIAL) == 1  # in the certificate only

    assert verify(padded, bundle).member == veraid.Member(ORG, "alice")


def test_signature_is_checked_over_the_tbs_as_received(padded: Pki) -> None:
    # The member certificate with its serial re-encoded minimally, signature unchanged: were
    # the TBS re-encoded before checking, this would verify (and the original would not).
    fields = tbs_fields(padded.member_certificate)
    fields["serial_number"] = der.integer(MEMBER_SERIAL_VALUE)
    original = asn1_x509.Certificate.load(padded.member_certificate)
    normalised = der.tlv(
        der.SEQUENCE,
        der.tlv(der.SEQUENCE, *fields.values()),
        original["signature_algorithm"].dump(),
        original["signature_value"].dump(),
    )
    organisation = load_certificate(padded.org_certificate, "org", issuer=True)

    verify_issued_by(load_certificate(padded.member_certificate, "member"), organisation)
    with pytest.raises(veraid.CertificateError, match="does not verify"):
        verify_issued_by(load_certificate(normalised, "member"), organisation)


def test_member_certificate_issued_by_a_padded_organisation_names_it(padded: Pki) -> None:
    member = veraid.issue_member_certificate(
        None,
        rsa_key(MEMBER_KEY).public_key(),
        padded.org_certificate,
        org_key(),
        padded.period.start,
        padded.period.end,
    )

    decoded = load_certificate(member, "member")
    organisation = load_certificate(padded.org_certificate, "org", issuer=True)
    assert decoded.issuer == organisation.subject
    verify_issued_by(decoded, organisation)


def test_decoding_agrees_with_cryptography(pki: Pki) -> None:
    for encoded in (pki.org_certificate, pki.member_certificate):
        ours = load_certificate(encoded, "certificate")
        theirs = x509.load_der_x509_certificate(encoded)

        assert ours.serial_number == theirs.serial_number
        assert ours.tbs == theirs.tbs_certificate_bytes
        assert ours.signature == theirs.signature
        assert ours.issuer == theirs.issuer.public_bytes()
        assert ours.subject == theirs.subject.public_bytes()
        assert ours.validity == veraid.DatePeriod(
            theirs.not_valid_before_utc, theirs.not_valid_after_utc
        )
        assert ours.public_key == theirs.public_key()


# --- Everything else stays strict ---------------------------------------------------------------


def _long_form(element: bytes) -> bytes:
    """``element`` with its (short) length in the long form: 0x81 then the length."""
    assert element[1] < 0x80
    return element[:1] + b"\x81" + element[1:]


def _indefinite(element: bytes) -> bytes:
    assert element[1] < 0x80
    return element[:1] + b"\x80" + element[2:] + b"\x00\x00"


def _padded_salt_length(pki: Pki) -> bytes:
    """The RSA-PSS AlgorithmIdentifier with saltLength 32 as 0x00 0x20."""
    algorithm = algos.SignedDigestAlgorithm.load(tbs_fields(pki.org_certificate)["signature"])
    parameters = algorithm["parameters"]
    assert parameters["salt_length"].dump() == b"\xa2\x03\x02\x01\x20"
    return der.tlv(
        der.SEQUENCE,
        algorithm["algorithm"].dump(),
        der.tlv(
            der.SEQUENCE,
            parameters["hash_algorithm"].dump(),
            parameters["mask_gen_algorithm"].dump(),
            b"\xa2\x04\x02\x02\x00\x20",
        ),
    )


def _extensions(pki: Pki, basic_constraints: bytes | None = None, *, twice: bool = False) -> bytes:
    """The organisation certificate's extensions, BasicConstraints' value replaced or the
    extension repeated."""
    tbs = asn1_x509.Certificate.load(pki.org_certificate)["tbs_certificate"]
    encoded = []
    for extension in tbs["extensions"]:
        if extension["extn_id"].native != "basic_constraints":
            encoded.append(extension.dump())
            continue
        value = basic_constraints or extension["extn_value"].contents
        oid_and_critical = extension["extn_id"].dump() + b"\x01\x01\xff"
        encoded.append(der.tlv(der.SEQUENCE, oid_and_critical, der.tlv(der.OCTET_STRING, value)))
        if twice:
            encoded.append(encoded[-1])
    return der.tlv(0xA3, der.tlv(der.SEQUENCE, *encoded))


def _org(pki: Pki, **changes: bytes) -> bytes:
    return resign(pki.org_certificate, org_key(), **changes)


def _validity(pki: Pki, change: Callable[[bytes], bytes]) -> bytes:
    return _org(pki, validity=change(tbs_fields(pki.org_certificate)["validity"]))


SHA256_WITH_RSA = algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}).dump()
assert SHA256_WITH_RSA.endswith(b"\x05\x00")  # NULL parameters


def _constructed_signature(pki: Pki) -> bytes:
    """The organisation certificate with its signature BIT STRING in the constructed (BER)
    form, which asn1crypto reads."""
    certificate = asn1_x509.Certificate.load(pki.org_certificate)
    signature = certificate["signature_value"].dump()
    return der.tlv(
        der.SEQUENCE,
        certificate["tbs_certificate"].dump(),
        certificate["signature_algorithm"].dump(),
        der.tlv(0x23, signature),
    )


def _resigned_with_signature_bits(pki: Pki, *, unused: int) -> bytes:
    certificate = asn1_x509.Certificate.load(_org(pki))
    signature = certificate["signature_value"].native
    return der.tlv(
        der.SEQUENCE,
        certificate["tbs_certificate"].dump(),
        certificate["signature_algorithm"].dump(),
        der.tlv(0x03, bytes([unused]) + signature),
    )


def _subject_with_type(attribute_type: bytes) -> bytes:
    value = der.tlv(0x1E, ORG.encode("utf-16-be"))
    return der.tlv(der.SEQUENCE, der.tlv(der.SET, der.tlv(der.SEQUENCE, attribute_type, value)))


def _two_attribute_subject(*, ordered: bool) -> bytes:
    """A subject with one RDN of two attributes (CN and O), in DER order or not."""
    attributes = [
        der.tlv(der.SEQUENCE, b"\x06\x03\x55\x04" + oid, der.tlv(0x1E, value.encode("utf-16-be")))
        for oid, value in ((b"\x03", ORG), (b"\x0a", "Example Inc"))
    ]
    attributes.sort(reverse=not ordered)
    return der.tlv(der.SEQUENCE, der.tlv(der.SET, *attributes))


def _times(not_before: bytes) -> bytes:
    return der.tlv(der.SEQUENCE, not_before, b"\x17\x0d491231235959Z")


MALFORMED: dict[str, tuple[Callable[[Pki], bytes], str]] = {
    "non-minimal length": (lambda pki: _validity(pki, _long_form), "shortest form"),
    "indefinite length": (lambda pki: _validity(pki, _indefinite), "indefinite length"),
    "wrong tag": (lambda pki: _validity(pki, lambda v: b"\x31" + v[1:]), "malformed"),
    "field added": (lambda pki: _org(pki, extra=b"\x02\x01\x00"), "malformed"),
    "version 1": (lambda pki: _org(pki, version=b""), "not an X.509 v3 certificate"),
    "version 3 in a non-minimal INTEGER": (
        lambda pki: _org(pki, version=b"\xa0\x04\x02\x02\x00\x02"),
        "not an X.509 v3 certificate",
    ),
    "serial padded with 0xFF": (
        lambda pki: _org(pki, serial_number=bytes.fromhex("0209ff80112233445566")),
        "INTEGER not in its shortest form",
    ),
    "empty serial": (lambda pki: _org(pki, serial_number=b"\x02\x00"), "empty INTEGER"),
    "non-minimal saltLength": (
        lambda pki: _org(pki, signature=_padded_salt_length(pki)),
        "INTEGER not in its shortest form",
    ),
    "non-minimal pathLenConstraint": (
        lambda pki: _org(pki, extensions=_extensions(pki, bytes.fromhex("30070101ff02020000"))),
        "INTEGER not in its shortest form",
    ),
    "BOOLEAN true as 0x01": (
        lambda pki: _org(pki, extensions=_extensions(pki, bytes.fromhex("3006010101020100"))),
        "BOOLEAN",
    ),
    "cA false encoded (the default)": (
        lambda pki: _org(pki, extensions=_extensions(pki, bytes.fromhex("3003010100"))),
        "BOOLEAN",
    ),
    "BasicConstraints with trailing bytes": (
        lambda pki: _org(pki, extensions=_extensions(pki, bytes.fromhex("30060101ff0201000500"))),
        "malformed",
    ),
    "extension twice": (
        lambda pki: _org(pki, extensions=_extensions(pki, twice=True)),
        "extension 2.5.29.19 twice",
    ),
    "UTCTime without seconds": (
        lambda pki: _org(pki, validity=_times(b"\x17\x0b2401011200Z")),
        "time not in the DER form",
    ),
    "UTCTime with an offset": (
        lambda pki: _org(pki, validity=_times(b"\x17\x11240101120000+0100")),
        "time not in the DER form",
    ),
    "GeneralizedTime with a fraction": (
        lambda pki: _org(pki, validity=_times(b"\x18\x1320240101120000.123Z")),
        "time not in the DER form",
    ),
    "constructed BIT STRING": (_constructed_signature, "constructed encoding"),
    "BIT STRING with unused bits": (
        lambda pki: _resigned_with_signature_bits(pki, unused=1),
        "BIT STRING not octet-aligned",
    ),
    "NULL with contents": (
        lambda pki: _org(
            pki,
            signature=der.tlv(
                der.SEQUENCE, der.contents_of(SHA256_WITH_RSA)[:-2] + b"\x05\x01\x00"
            ),
        ),
        "NULL with contents",
    ),
    "OBJECT IDENTIFIER arc padded": (
        lambda pki: _org(pki, subject=_subject_with_type(b"\x06\x04\x55\x04\x80\x03")),
        "OBJECT IDENTIFIER arc not in its shortest form",
    ),
    "SET OF out of order": (
        lambda pki: _org(pki, subject=_two_attribute_subject(ordered=False)),
        "SET OF not in DER order",
    ),
    "signature algorithms differ": (
        lambda pki: sign_tbs(
            der.tlv(der.SEQUENCE, *tbs_fields(pki.org_certificate).values()),
            org_key(),
            SHA256_WITH_RSA,
        ),
        "names two signature algorithms",
    ),
}


@pytest.mark.parametrize(("make", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_certificate_deviating_from_der_is_refused(
    pki: Pki, make: Callable[[Pki], bytes], message: str
) -> None:
    certificate = make(pki)
    bundle = veraid.serialise_member_id_bundle(
        pki.chain.responses, certificate, pki.member_certificate
    )

    with pytest.raises(veraid.MalformedError, match=message):
        load_certificate(certificate, "Organisation certificate", issuer=True)
    with pytest.raises(veraid.MalformedError, match=f"^Organisation certificate .*{message}"):
        verify_member_id(pki, bundle)


def test_set_of_in_der_order_is_accepted(pki: Pki) -> None:
    certificate = _org(pki, subject=_two_attribute_subject(ordered=True))

    assert load_certificate(certificate, "org").common_name == ORG


def test_certificate_with_trailing_bytes_is_refused(pki: Pki) -> None:
    with pytest.raises(veraid.MalformedError, match="Organisation certificate is malformed"):
        load_certificate(pki.org_certificate + b"\x00", "Organisation certificate")


def test_member_certificate_deviating_from_der_is_refused(pki: Pki) -> None:
    fields = tbs_fields(pki.member_certificate)
    member = resign(pki.member_certificate, org_key(), validity=_long_form(fields["validity"]))
    bundle = veraid.serialise_member_id_bundle(pki.chain.responses, pki.org_certificate, member)

    with pytest.raises(
        veraid.MalformedError, match="Member certificate is not DER: length not in its shortest"
    ):
        verify_member_id(pki, bundle)
