"""How fast ``veraid`` verifies and signs member SignatureBundles, against its references.

On one core (pinned with ``sched_setaffinity``; the Node child inherits the pin), with RSA-2048
keys and a mock DNSSEC chain, it measures in one run:

* cold verifications per second (nothing cached) and cached ones (``VerificationCache``:
  DNSSEC chain and organisation certificate already validated);
* the same bundles verified by ``@relaycorp/veraid`` on Node (``veraid/tests/interop``);
* the floor: only the public-key operations and digests a verification needs, keys
  pre-loaded, with ``cryptography``;
* signatures per second, here and in ``@relaycorp/veraid``.

Run: ``python -m benchmarks.veraid_verification [--seconds 3] [--cpu N]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.dnssec
import dns.message
import dns.rdatatype
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

import veraid
from veraid import _asn1
from veraid._cms import parse_signed_data
from veraid._pki import load_certificate, signature_scheme

INTEROP_DIR = Path(__file__).resolve().parent.parent / "veraid" / "tests" / "interop"
SERVICE = veraid.OID_TEST_SERVICE
PLAINTEXT = b"Hello VeraId: a member signature bundle for the benchmark"
DOMAIN = "example.com"


@dataclass(frozen=True)
class Material:
    now: datetime
    end: datetime
    anchor: veraid.TrustAnchor
    member_key: rsa.RSAPrivateKey
    member_id_bundle: bytes
    bundle: bytes


def make_material() -> Material:
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(5)]
    zone_keys, org_key, member_key = keys[:3], keys[3], keys[4]
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = now - timedelta(minutes=10), now + timedelta(hours=1)
    txt = veraid.generate_txt_rdata(org_key.public_key(), timedelta(hours=1))
    chain = veraid.generate_mock_chain(DOMAIN, [txt], veraid.DatePeriod(start, end), zone_keys)
    org = veraid.issue_organisation_certificate(DOMAIN, org_key, start, end)
    member = veraid.issue_member_certificate(
        "alice", member_key.public_key(), org, org_key, start, end
    )
    member_id_bundle = veraid.serialise_member_id_bundle(chain.responses, org, member)
    bundle = veraid.sign_as_member(PLAINTEXT, SERVICE, member_id_bundle, member_key, start, end)
    return Material(now, end, chain.trust_anchor, member_key, member_id_bundle, bundle)


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Operations per second, run back to back for ``seconds`` after a short warm-up."""
    for _ in range(20):
        operation()
    count = 0
    begin = time.perf_counter()
    deadline = begin + seconds
    while time.perf_counter() < deadline:
        operation()
        count += 1
    return count / (time.perf_counter() - begin)


def _rsa_key(dnskey: bytes) -> rsa.RSAPublicKey:
    """An RSA DNSKEY's public key (RFC 3110 §2: exponent length, exponent, modulus)."""
    if dnskey[0]:
        exponent_length, offset = dnskey[0], 1
    else:
        exponent_length, offset = int.from_bytes(dnskey[1:3], "big"), 3
    exponent = int.from_bytes(dnskey[offset : offset + exponent_length], "big")
    modulus = int.from_bytes(dnskey[offset + exponent_length :], "big")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def floor_operation(material: Material) -> Callable[[], None]:
    """The public-key work of one verification, everything else done beforehand."""
    decoded = _asn1.SignatureBundle.load(material.bundle)
    responses = [item.native for item in decoded["dnssec_chain"]]
    org = load_certificate(_asn1.der_from_implicit(decoded["organisation_certificate"]), "org")
    signed = parse_signed_data(decoded["signature"])
    member = load_certificate(signed.certificates[0], "member")
    member_scheme, member_hash = signature_scheme(member)

    rrsig_checks = []
    ds_inputs = []
    messages = [dns.message.from_wire(response) for response in responses]
    dnskeys = {
        m.answer[0].name: m.answer[0]
        for m in messages
        if m.answer[0].rdtype == dns.rdatatype.DNSKEY
    }
    for message in messages:
        rrset, rrsigs = message.answer[0], message.answer[1]
        rrsig = rrsigs[0]
        data = dns.dnssec._make_rrsig_signature_data(rrset, rrsig)
        key = _rsa_key(dnskeys[rrsig.signer][0].key)
        rrsig_checks.append((key, rrsig.signature, data))
        if rrset.rdtype == dns.rdatatype.DNSKEY:
            ds_inputs.append(rrset.name.to_digestable() + rrset[0].to_digestable())
    pkcs1 = padding.PKCS1v15()
    sha256 = hashes.SHA256()

    def operation() -> None:
        for key, signature, data in rrsig_checks:
            key.verify(signature, data, pkcs1, sha256)
        for data in ds_inputs[1:]:  # the root's DS is the trust anchor, compared likewise
            hashlib.sha256(data).digest()
        hashlib.sha256(ds_inputs[0]).digest()
        org.public_key.verify(member.signature, member.tbs, member_scheme, member_hash)
        member.public_key.verify(
            signed.signature,
            signed.signed_attributes,
            signed.signature_padding,
            signed.signature_hash,
        )

    print(
        f"  floor: {len(rrsig_checks)} RRSIG checks, {len(ds_inputs)} DS digests, 2 RSA-PSS checks"
    )
    return operation


def run_js(material: Material, seconds: float) -> dict[str, float] | None:
    node = shutil.which("node")
    if node is None or not (INTEROP_DIR / "node_modules" / "@relaycorp" / "veraid").is_dir():
        print("  @relaycorp/veraid: not installed (npm ci --prefix veraid/tests/interop); skipped")
        return None
    key = material.member_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    anchor = material.anchor
    command = {
        "command": "benchmark",
        "options": {
            "bundle": base64.b64encode(material.bundle).decode(),
            "plaintext": base64.b64encode(PLAINTEXT).decode(),
            "serviceOid": SERVICE,
            "date": material.now.isoformat(),
            "end": material.end.isoformat(),
            "memberIdBundle": base64.b64encode(material.member_id_bundle).decode(),
            "memberPrivateKey": base64.b64encode(key).decode(),
            "trustAnchor": {
                "keyTag": anchor.key_tag,
                "algorithm": anchor.algorithm,
                "digestType": anchor.digest_type,
                "digest": anchor.digest.hex(),
            },
            "seconds": seconds,
        },
    }
    completed = subprocess.run(
        [node, "veraid_bridge.mjs"],
        input=json.dumps(command).encode(),
        capture_output=True,
        cwd=INTEROP_DIR,
        check=True,
    )
    result: dict[str, float] = json.loads(completed.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to (default: first)")
    args = parser.parse_args()
    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    print(f"Pinned to CPU {cpu}; {args.seconds:g} s per measurement; RSA-2048, mock chain")
    # Other processes on the machine slow every figure alike; the ratios are what to compare.
    print("Load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

    material = make_material()
    anchors = [material.anchor]

    def verify(cache: veraid.VerificationCache | None) -> Callable[[], object]:
        return lambda: veraid.verify_signature_bundle(
            material.bundle,
            SERVICE,
            material.now,
            plaintext=PLAINTEXT,
            trust_anchors=anchors,
            cache=cache,
        )

    start = material.now - timedelta(minutes=1)
    figures: dict[str, float] = {
        "cold": rate(verify(None), args.seconds),
        "cached": rate(verify(veraid.VerificationCache()), args.seconds),
        "floor": rate(floor_operation(material), args.seconds),
        "sign": rate(
            lambda: veraid.sign_as_member(
                PLAINTEXT,
                SERVICE,
                material.member_id_bundle,
                material.member_key,
                start,
                material.end,
            ),
            args.seconds,
        ),
    }
    js = run_js(material, args.seconds)

    def line(label: str, per_second: float) -> str:
        return f"  {label:<44} {per_second:9.0f}/s  {1e6 / per_second:9.0f} µs each"

    print(line("veraid (Python), cold verification", figures["cold"]))
    print(line("veraid (Python), cached chain and org cert", figures["cached"]))
    print(line("floor (public-key operations only)", figures["floor"]))
    print(line("veraid (Python), signing", figures["sign"]))
    if js is not None:
        print(line("@relaycorp/veraid (Node), verification", js["verificationsPerSecond"]))
        print(line("@relaycorp/veraid (Node), signing", js["signaturesPerSecond"]))
        verify_js = js["verificationsPerSecond"]
        print("Ratios (targets: cold >= 2.5x, cached >= 6x, signing >= 2x @relaycorp/veraid):")
        print(f"  cold / JS:    {figures['cold'] / verify_js:5.2f}x")
        print(f"  cached / JS:  {figures['cached'] / verify_js:5.2f}x")
        print(f"  signing / JS: {figures['sign'] / js['signaturesPerSecond']:5.2f}x")
    print("Load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"  cold / floor:   {figures['cold'] / figures['floor']:5.3f}")
    print(f"  cached / floor: {figures['cached'] / figures['floor']:5.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
