"""Thousands of certificates from ``@relaycorp/veraid``: every bundle using them verifies.

What a real issuer writes only rarely (one serial number in 512 is not minimal DER) shows up
only in bulk. RSA keys are slow to make, so a few keys of each size (made here, shared with
the bridge) sign many certificates, which are cheap. Two Node processes share the work.
"""

from __future__ import annotations

import base64
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

import veraid
from test_veraid_interop import b64, run_bridge
from veraid._pki import spki_der
from veraid_helpers import ORG, PLAINTEXT, SERVICE

# 2 x 600 rounds, two certificates each: P(no non-minimal serial) = (511/512)^2400 ≈ 0.9%.
PROCESSES = 2
ROUNDS_PER_PROCESS = 600
BUNDLE_EVERY = 40  # rounds; and every round with a non-minimal serial

# Organisation keys, round-robin: mostly RSA-2048 (the cheapest to sign with), and every
# size and hash veraid-js signs certificates with (the hash of the issuer's key).
ORG_KEYS = [(2048, "SHA-256")] * 12 + [
    (3072, "SHA-256"),
    (4096, "SHA-256"),
    (2048, "SHA-384"),
    (4096, "SHA-512"),
]
MEMBER_KEY_SIZES = [2048, 3072, 4096]
# Names veraid-js writes as BMPStrings: beyond ASCII, beyond the BMP, and the bot's.
MEMBER_NAMES = ["alice", None, "ünïcödé", "用户 名", "😀 smile", "d'Artagnan"]


@functools.cache
def rsa_key(size: int, role: str) -> rsa.RSAPrivateKey:
    """One key per size and role ("organisation" or "member")."""
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def key_json(size: int, role: str, **extra: str) -> dict[str, str]:
    key = rsa_key(size, role)
    pkcs8 = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    return {"pkcs8": b64(pkcs8), "spki": b64(spki_der(key.public_key())), **extra}


def millis(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Organisation:
    now: datetime
    chain: veraid.MockChain


@pytest.fixture(scope="module")
def organisation() -> Organisation:
    now = datetime.now(UTC)
    period = veraid.DatePeriod(now - timedelta(hours=1), now + timedelta(hours=2))
    sizes = sorted({size for size, _ in ORG_KEYS})
    txt = [
        veraid.generate_txt_rdata(rsa_key(size, "organisation").public_key(), timedelta(hours=1))
        for size in sizes
    ]
    return Organisation(now, veraid.generate_mock_chain(ORG, txt, period))


def bulk_command(organisation: Organisation, first_round: int) -> dict[str, Any]:
    now = organisation.now
    return {
        "command": "bulk",
        "options": {
            "domain": ORG,
            "dnssecChain": [b64(response) for response in organisation.chain.responses],
            "keys": [
                key_json(size, "organisation", hash=hash_name, label=f"RSA-{size}/{hash_name}")
                for size, hash_name in ORG_KEYS
            ],
            "memberKeys": [
                key_json(size, "member", label=f"RSA-{size}") for size in MEMBER_KEY_SIZES
            ],
            # Dates with milliseconds, as real clocks give them.
            "start": millis(now - timedelta(minutes=10, milliseconds=321)),
            "certificateEnds": [
                millis(now + timedelta(hours=1, milliseconds=123)),
                millis(now + timedelta(days=400, milliseconds=789)),
            ],
            "signatureEnd": millis(now + timedelta(minutes=30, milliseconds=456)),
            "memberNames": MEMBER_NAMES,
            "plaintext": b64(PLAINTEXT),
            "serviceOid": SERVICE,
            "firstRound": first_round,
            "rounds": ROUNDS_PER_PROCESS,
            "bundleEvery": BUNDLE_EVERY,
        },
    }


def has_non_minimal_serial(certificate: bytes) -> bool:
    serial = asn1_x509.Certificate.load(certificate)["tbs_certificate"]["serial_number"]
    return len(serial.contents) > 1 and serial.contents[0] == 0 and serial.contents[1] < 0x80


@dataclass
class Tally:
    certificates: int = 0
    non_minimal: int = 0
    member_id_bundles: int = 0
    signature_bundles: int = 0


class BulkVerifier:
    """Verifies every round's bundles, noting each refusal (with its round and keys) rather
    than stopping at the first: the point is to see every kind of deviation at once."""

    def __init__(self, organisation: Organisation) -> None:
        self.organisation = organisation
        self.anchors = [organisation.chain.trust_anchor]
        self.cache = veraid.VerificationCache()
        self.tally = Tally()
        self.failures: list[str] = []

    def round(self, result: dict[str, Any]) -> None:
        org_der = base64.b64decode(result["organisationCertificate"])
        member_der = base64.b64decode(result["memberCertificate"])
        for certificate, flag in (
            (org_der, result["organisationSerialNonMinimal"]),
            (member_der, result["memberSerialNonMinimal"]),
        ):
            assert has_non_minimal_serial(certificate) is flag, result["round"]
            self.tally.certificates += 1
            self.tally.non_minimal += flag
        # Most rounds ship certificates only (bundles are costly to serialise in JS).
        responses = self.organisation.chain.responses
        self.member_id(result, veraid.serialise_member_id_bundle(responses, org_der, member_der))
        if "bundles" in result:
            self.js_bundles(result)

    def member_id(self, result: dict[str, Any], bundle: bytes) -> None:
        self.tally.member_id_bundles += 1
        try:
            verification = veraid.verify_member_id_bundle(
                bundle, SERVICE, self.organisation.now, trust_anchors=self.anchors, cache=self.cache
            )
        except veraid.VeraidError as error:
            self.refused(result, "MemberIdBundle", error)
            return
        assert verification.member == veraid.Member(ORG, result["memberName"])

    def js_bundles(self, result: dict[str, Any]) -> None:
        bundles = result["bundles"]
        self.member_id(result, base64.b64decode(bundles["memberIdBundle"]))
        plaintext = None if bundles["encapsulated"] else PLAINTEXT
        for name, by_member in (("memberSignature", True), ("organisationSignature", False)):
            self.tally.signature_bundles += 1
            try:
                verification = veraid.verify_signature_bundle(
                    base64.b64decode(bundles[name]),
                    SERVICE,
                    self.organisation.now,
                    plaintext=plaintext,
                    trust_anchors=self.anchors,
                    cache=self.cache,
                )
            except veraid.VeraidError as error:
                self.refused(result, name, error)
                continue
            assert verification.member == veraid.Member(ORG, result["memberName"]), name
            assert (verification.plaintext, verification.signed_by_member) == (PLAINTEXT, by_member)

    def refused(self, result: dict[str, Any], what: str, error: veraid.VeraidError) -> None:
        keys = f"{result['organisationKey']}, member {result['memberKey']}"
        self.failures.append(f"round {result['round']} ({keys}): {what}: {error!r}")


def test_every_bundle_of_thousands_of_js_certificates_verifies(
    organisation: Organisation,
) -> None:
    commands = [
        bulk_command(organisation, index * ROUNDS_PER_PROCESS) for index in range(PROCESSES)
    ]
    with ThreadPoolExecutor(PROCESSES) as pool:
        answers = list(pool.map(run_bridge, commands))
    rounds = [result for answer in answers for result in answer["rounds"]]
    verifier = BulkVerifier(organisation)

    for result in rounds:
        verifier.round(result)

    assert verifier.failures == []
    tally = verifier.tally
    sampled = sum("bundles" in result for result in rounds)
    print(
        f"\n{tally.certificates} certificates from @relaycorp/veraid, {tally.non_minimal} with a"
        f" non-minimal serial; verified {tally.member_id_bundles} MemberIdBundles and"
        f" {tally.signature_bundles} SignatureBundles"
    )
    assert len(rounds) == PROCESSES * ROUNDS_PER_PROCESS
    assert tally.certificates == 2 * len(rounds)
    assert tally.member_id_bundles == len(rounds) + sampled
    assert tally.signature_bundles == 2 * sampled
    assert sampled >= len(rounds) // BUNDLE_EVERY
    assert {result["organisationKey"] for result in rounds} == {
        f"RSA-{size}/{hash_name}" for size, hash_name in ORG_KEYS
    }
    # Every non-minimal serial came with its bundles, and cryptography alone would refuse it.
    for result in rounds:
        for kind in ("organisation", "member"):
            if result[f"{kind}SerialNonMinimal"]:
                assert "bundles" in result
                with pytest.raises(ValueError, match="ParseError"):
                    x509.load_der_x509_certificate(base64.b64decode(result[f"{kind}Certificate"]))
