"""Interoperability of ``veraid`` with ``@relaycorp/veraid`` (the reference implementation).

Bundles made by the JS library verify in Python and bundles made in Python verify in JS,
through ``tests/interop/veraid_bridge.mjs`` (exact versions pinned in
``tests/interop/package.json``; installed by ``npm ci --prefix tests/interop`` from this
directory's parent). Without Node or those packages the tests are skipped, except on CI
(``CI=true``), where they fail.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key

import veraid
from veraid_helpers import ORG, PLAINTEXT, SERVICE, Pki, make_chain, make_pki

INTEROP_DIR = Path(__file__).parent / "interop"
BRIDGE = INTEROP_DIR / "veraid_bridge.mjs"
VERAID_JS_DIR = INTEROP_DIR / "node_modules" / "@relaycorp" / "veraid"

ON_CI = os.environ.get("CI", "").lower() == "true"


def requires_node() -> str:
    """The path to ``node``, if it and ``@relaycorp/veraid`` are installed; else skip, or
    fail on CI, where a missing tool must not pass for a passing test."""
    node = shutil.which("node")
    if node is None:
        reason = "Node.js is not installed"
    elif not (VERAID_JS_DIR / "package.json").is_file():
        reason = "@relaycorp/veraid is not installed: npm ci --prefix tests/interop"
    else:
        return node
    if ON_CI:
        pytest.fail(f"{reason} (CI=true: a missing tool is a failure)")
    pytest.skip(reason)


def run_bridge(command: dict[str, Any]) -> dict[str, Any]:
    """Run one bridge command (node starts once per call, so tests batch their work)."""
    node = requires_node()
    completed = subprocess.run(
        [node, str(BRIDGE)],
        input=json.dumps(command).encode(),
        capture_output=True,
        cwd=INTEROP_DIR,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"The JS bridge failed: {completed.stdout!r} {completed.stderr.decode()}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def anchor_json(anchor: veraid.TrustAnchor) -> dict[str, Any]:
    return {
        "keyTag": anchor.key_tag,
        "algorithm": anchor.algorithm,
        "digestType": anchor.digest_type,
        "digest": anchor.digest.hex(),
    }


def anchor_from_json(data: dict[str, Any]) -> veraid.TrustAnchor:
    return veraid.TrustAnchor(
        data["keyTag"], data["algorithm"], data["digestType"], bytes.fromhex(data["digest"])
    )


def js_generate(
    now: datetime,
    member_name: str | None,
    attributed_name: str | None,
    org_modulus_length: int = 2048,
    *,
    non_minimal_serials: bool = False,
) -> dict[str, Any]:
    return run_bridge(
        {
            "command": "generate",
            "options": {
                "nonMinimalSerials": non_minimal_serials,
                "orgModulusLength": org_modulus_length,
                "domain": ORG,
                "start": (now - timedelta(minutes=10)).isoformat(),
                "end": (now + timedelta(hours=1)).isoformat(),
                "ttlOverride": 3600,
                "memberName": member_name,
                "attributedName": attributed_name,
                "plaintext": b64(PLAINTEXT),
                "serviceOid": SERVICE,
            },
        }
    )


@pytest.fixture(scope="module")
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def js(now: datetime) -> dict[str, Any]:
    return js_generate(now, "alice", "bob")


# --- JS -> Python -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encapsulated", "user", "by_member"),
    [
        ("memberSignatureDetached", False, "alice", True),
        ("memberSignatureEncapsulated", True, "alice", True),
        ("organisationSignatureDetached", False, "bob", False),
        ("organisationSignatureEncapsulated", True, "bob", False),
    ],
)
def test_js_signature_bundle_verifies_in_python(
    js: dict[str, Any], now: datetime, name: str, encapsulated: bool, user: str, by_member: bool
) -> None:
    result = veraid.verify_signature_bundle(
        base64.b64decode(js[name]),
        SERVICE,
        now,
        plaintext=None if encapsulated else PLAINTEXT,
        trust_anchors=[anchor_from_json(js["trustAnchor"])],
    )

    assert result.member == veraid.Member(ORG, user)
    assert result.plaintext == PLAINTEXT
    assert result.signed_by_member is by_member


def test_js_encapsulates_as_constructed_octet_string(js: dict[str, Any]) -> None:
    # The case asn1crypto's stock CMS classes refuse; the test above must cover it.
    from veraid import _asn1

    bundle = _asn1.SignatureBundle.load(base64.b64decode(js["memberSignatureEncapsulated"]))
    econtent = bundle["signature"]["content"]["encap_content_info"]["content"].dump()

    assert econtent[0] == 0xA0
    assert econtent[2] == 0x24  # constructed OCTET STRING


def test_js_bundles_refused_for_another_service(js: dict[str, Any], now: datetime) -> None:
    with pytest.raises(veraid.ServiceMismatchError):
        veraid.verify_signature_bundle(
            base64.b64decode(js["memberSignatureDetached"]),
            "1.2.3.4",
            now,
            plaintext=PLAINTEXT,
            trust_anchors=[anchor_from_json(js["trustAnchor"])],
        )


def test_js_member_id_bundle_verifies_in_python(js: dict[str, Any], now: datetime) -> None:
    result = veraid.verify_member_id_bundle(
        base64.b64decode(js["memberIdBundle"]),
        SERVICE,
        now,
        trust_anchors=[anchor_from_json(js["trustAnchor"])],
    )

    assert result.member == veraid.Member(ORG, "alice")


def test_js_txt_rdata_matches_python(js: dict[str, Any]) -> None:
    from veraid._pki import load_certificate

    org = load_certificate(base64.b64decode(js["organisationCertificate"]), "org")

    assert js["txtRdata"] == veraid.generate_txt_rdata(org.public_key, timedelta(hours=1))


def test_js_rsa_3072_organisation_verifies_in_python(now: datetime) -> None:
    # The TXT key id of a 3072-bit key is a SHA-384 digest: both sides must agree.
    from veraid._pki import load_certificate

    js = js_generate(now, "alice", "bob", org_modulus_length=3072)
    org = load_certificate(base64.b64decode(js["organisationCertificate"]), "org")
    assert org.public_key.key_size == 3072
    assert js["txtRdata"] == veraid.generate_txt_rdata(org.public_key, timedelta(hours=1))
    assert js["txtRdata"].startswith("2 ")

    result = veraid.verify_signature_bundle(
        base64.b64decode(js["organisationSignatureDetached"]),
        SERVICE,
        now,
        plaintext=PLAINTEXT,
        trust_anchors=[anchor_from_json(js["trustAnchor"])],
    )

    assert result.member == veraid.Member(ORG, "bob")


def test_js_bot_bundles_verify_in_python(now: datetime) -> None:
    bot = js_generate(now, None, None)
    anchors = [anchor_from_json(bot["trustAnchor"])]

    for name in ("memberSignatureDetached", "organisationSignatureDetached"):
        result = veraid.verify_signature_bundle(
            base64.b64decode(bot[name]), SERVICE, now, plaintext=PLAINTEXT, trust_anchors=anchors
        )
        assert result.member == veraid.Member(ORG, None), name


# --- Certificates with non-minimal serial numbers --------------------------------------------
# veraid-js draws a serial as 64 random bits and clears only the sign bit, so one in 512 starts
# 0x00 then an octet below 0x80: not minimal DER. The bridge issues until it has one of each.


@pytest.fixture(scope="module")
def js_padded(now: datetime) -> dict[str, Any]:
    return js_generate(now, "alice", "bob", non_minimal_serials=True)


def test_js_certificates_with_non_minimal_serials_are_what_they_claim(
    js_padded: dict[str, Any],
) -> None:
    from cryptography import x509

    from veraid._pki import load_certificate

    for name in ("organisationCertificate", "memberCertificate"):
        der = base64.b64decode(js_padded[name])
        serial = load_certificate(der, name).serial
        assert serial[2:3] == b"\x00", serial.hex()  # after the tag and length
        assert serial[3] < 0x80, serial.hex()
        with pytest.raises(ValueError, match="ParseError"):
            x509.load_der_x509_certificate(der)
    print(f"\nveraid-js issuances until a non-minimal serial: {js_padded['issuances']}")


def test_js_member_id_bundle_with_non_minimal_serials_verifies_in_python(
    js_padded: dict[str, Any], now: datetime
) -> None:
    result = veraid.verify_member_id_bundle(
        base64.b64decode(js_padded["memberIdBundle"]),
        SERVICE,
        now,
        trust_anchors=[anchor_from_json(js_padded["trustAnchor"])],
    )

    assert result.member == veraid.Member(ORG, "alice")


@pytest.mark.parametrize(
    ("name", "encapsulated", "user", "by_member"),
    [
        ("memberSignatureDetached", False, "alice", True),
        ("memberSignatureEncapsulated", True, "alice", True),
        ("organisationSignatureDetached", False, "bob", False),
        ("organisationSignatureEncapsulated", True, "bob", False),
    ],
)
def test_js_signature_bundle_with_non_minimal_serials_verifies_in_python(
    js_padded: dict[str, Any],
    now: datetime,
    name: str,
    encapsulated: bool,
    user: str,
    by_member: bool,
) -> None:
    from veraid._pki import load_certificate

    bundle = base64.b64decode(js_padded[name])
    signer = "memberCertificate" if by_member else "organisationCertificate"
    # The certificate and the SignerInfo naming it, with its serial as encoded (padded).
    serial = load_certificate(base64.b64decode(js_padded[signer]), signer).serial
    assert bundle.count(serial) == 2

    result = veraid.verify_signature_bundle(
        bundle,
        SERVICE,
        now,
        plaintext=None if encapsulated else PLAINTEXT,
        trust_anchors=[anchor_from_json(js_padded["trustAnchor"])],
    )

    assert result.member == veraid.Member(ORG, user)
    assert (result.plaintext, result.signed_by_member) == (PLAINTEXT, by_member)


def test_python_signs_with_js_certificates_with_non_minimal_serials(
    js_padded: dict[str, Any], now: datetime
) -> None:
    # pkijs matches the SignerInfo's serial byte for byte: ours must copy the padding.
    keys = {}
    for name in ("memberPrivateKey", "organisationPrivateKey"):
        key = load_der_private_key(base64.b64decode(js_padded[name]), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        keys[name] = key
    start, end = now - timedelta(minutes=5), now + timedelta(minutes=30)
    member_bundle = veraid.sign_as_member(
        PLAINTEXT,
        SERVICE,
        base64.b64decode(js_padded["memberIdBundle"]),
        keys["memberPrivateKey"],
        start,
        end,
    )
    org_bundle = veraid.sign_as_organisation(
        PLAINTEXT,
        SERVICE,
        [base64.b64decode(response) for response in js_padded["dnssecChain"]],
        base64.b64decode(js_padded["organisationCertificate"]),
        keys["organisationPrivateKey"],
        start,
        end,
        user_name="carol",
    )
    items = [
        {
            "kind": "signature",
            "bundle": b64(bundle),
            "plaintext": b64(PLAINTEXT),
            "serviceOid": SERVICE,
            "date": now.isoformat(),
            "trustAnchor": js_padded["trustAnchor"],
        }
        for bundle in (member_bundle, org_bundle)
    ]

    member_result, org_result = js_verify(items)

    assert (member_result["ok"], member_result.get("user")) == (True, "alice"), member_result
    assert (org_result["ok"], org_result.get("user")) == (True, "carol"), org_result


# --- Python -> JS -----------------------------------------------------------------------------


def js_verify(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = run_bridge({"command": "verify", "items": items})["results"]
    return results


def signature_item(
    pki: Pki, bundle: bytes, plaintext: bytes | None, service: str = SERVICE
) -> dict[str, Any]:
    return {
        "kind": "signature",
        "bundle": b64(bundle),
        "plaintext": None if plaintext is None else b64(plaintext),
        "serviceOid": service,
        "date": pki.now.isoformat(),
        "trustAnchor": anchor_json(pki.chain.trust_anchor),
    }


@pytest.fixture(scope="module")
def pki(now: datetime) -> Pki:
    return make_pki(now=now)


def test_python_bundles_verify_in_js(pki: Pki) -> None:
    bot = make_pki(now=pki.now, member_name=None)
    cases = [
        (signature_item(pki, pki.member_signature(), PLAINTEXT), "alice", True),
        (signature_item(pki, pki.member_signature(encapsulate=True), None), "alice", True),
        (signature_item(pki, pki.org_signature("bob"), PLAINTEXT), "bob", False),
        (signature_item(pki, pki.org_signature("bob", encapsulate=True), None), "bob", False),
        (signature_item(pki, pki.org_signature(None), PLAINTEXT), None, False),
        (signature_item(bot, bot.member_signature(), PLAINTEXT), None, True),
    ]

    results = js_verify([item for item, _, _ in cases])

    for (_, user, by_member), result in zip(cases, results, strict=True):
        assert result == {
            "ok": True,
            "organisation": ORG,
            "user": user,
            "plaintext": b64(PLAINTEXT),
            "signedByMember": by_member,
        }


def test_python_member_id_bundle_verifies_in_js(pki: Pki) -> None:
    item = {
        "kind": "member-id",
        "bundle": b64(pki.member_id_bundle),
        "serviceOid": SERVICE,
        "date": pki.now.isoformat(),
        "trustAnchor": anchor_json(pki.chain.trust_anchor),
    }

    [result] = js_verify([item])

    assert result == {"ok": True, "organisation": ORG, "user": "alice"}


def test_js_refuses_bad_python_bundles(pki: Pki) -> None:
    # The bridge must report failures, or the tests above would prove nothing.
    results = js_verify(
        [
            signature_item(pki, pki.member_signature(), PLAINTEXT + b"!"),
            signature_item(pki, pki.member_signature(), PLAINTEXT, service="1.2.3.4"),
        ]
    )

    assert [result["ok"] for result in results] == [False, False]
    assert "Signature is invalid" in results[0]["error"]
    assert "different service" in results[1]["error"]


def test_python_signs_with_js_member_id_bundle(js: dict[str, Any], now: datetime) -> None:
    member_key = load_der_private_key(base64.b64decode(js["memberPrivateKey"]), None)
    assert isinstance(member_key, rsa.RSAPrivateKey)
    bundle = veraid.sign_as_member(
        PLAINTEXT,
        SERVICE,
        base64.b64decode(js["memberIdBundle"]),
        member_key,
        now - timedelta(minutes=5),
        now + timedelta(minutes=30),
    )
    item = {
        "kind": "signature",
        "bundle": b64(bundle),
        "plaintext": b64(PLAINTEXT),
        "serviceOid": SERVICE,
        "date": now.isoformat(),
        "trustAnchor": js["trustAnchor"],
    }

    [result] = js_verify([item])

    assert result["ok"] is True, result
    assert result["user"] == "alice"


def test_python_rsa_4096_organisation_verifies_in_js(pki: Pki) -> None:
    # The TXT key id of a 4096-bit key is a SHA-512 digest: both sides must agree.
    org_key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    txt = veraid.generate_txt_rdata(org_key.public_key(), timedelta(hours=1))
    assert txt.startswith("3 ")
    chain = make_chain([txt], pki.period)
    org = veraid.issue_organisation_certificate(ORG, org_key, pki.period.start, pki.period.end)
    bundle = veraid.sign_as_organisation(
        PLAINTEXT,
        SERVICE,
        chain.responses,
        org,
        org_key,
        pki.period.start,
        pki.period.end,
        user_name="carol",
    )
    big = Pki(pki.now, pki.period, chain, org, pki.member_certificate)

    [result] = js_verify([signature_item(big, bundle, PLAINTEXT)])

    assert result["ok"] is True, result
    assert result["user"] == "carol"
