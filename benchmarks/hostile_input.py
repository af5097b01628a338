"""Worst-case CPU of the server's parsers on hostile input, on one core.

For each parser, the costliest inputs found that get past its caps (and some that do not),
within the 32 KiB body cap of the ingress: CPU milliseconds per message (median and max over
the repetitions, ``time.process_time``), the input's size, what the parser said, and the
ratio to the floor: verifying a genuine contact pairing request.

Contact pairing requests are timed the whole way, as the ingress handles them with an empty
cache (an attacker varies the bytes to miss it): ``veraid.verify_signature_bundle`` then, if
that accepts, ``parse_contact_pairing_request`` of the plaintext (the work of
``letro.contact_pairing.check_contact_pairing_request``). The target is 10 ms for
every one of them. The admitted DNSSEC chains are the costliest the limits of
``veraid._limits`` let through for each algorithm: as deep as the response count allows,
as many RRSIGs and colliding key tags as the signature budget allows, RRsets and answer
sections filled with junk records, all within the byte limits. ``read_signature_bundle``
(who a bundle claims to be from, unverified) is timed on the same bundles.

Run: ``python -m benchmarks.hostile_input [--repetitions 30] [--cpu N] [--json]``.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import secrets
import statistics
import struct
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

import dns.name
import dns.rdatatype
from asn1crypto import core
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import veraid
from awala.private_endpoint_conn_params import read_connection_params
from infra.agents import connection_params, new_rsa_key, spki
from letro.account_messages import (
    parse_account_request,
    serialise_account_request,
    serialise_account_request_signature,
    verify_account_request,
)
from letro.connection_params import parse_connection_params_request
from letro.contact_pairing import (
    LETRO_SERVICE_OID,
    parse_contact_pairing_request,
    serialise_contact_pairing_request,
)
from letro.errors import LetroProtocolError
from letro.legacy_pairing import parse_pairing_request
from veraid import _der, _limits
from veraid._dns import _plan
from veraid._dnssec import ChainResponses
from veraid_helpers import (
    ORG_KEY,
    ChainShape,
    Pki,
    ZonePrivateKey,
    bloated_signature_bundle,
    der_element_count,
    junk_organisation_certificate,
    long_exponent_key,
    make_pki,
    member_signature_with,
    organisation,
    rsa_key,
    shaped_pki,
    with_organisation_certificate,
)

BODY_CAP = 32 * 1024
TARGET_MS = 10.0
# What a SignatureBundle holds beside its chain (certificates, CMS, request): under 3 KiB.
_BUNDLE_OVERHEAD = 3 * 1024


@dataclass(frozen=True)
class Case:
    parser: str
    name: str
    data: bytes
    run: Callable[[bytes], str]  # the outcome: "accepted" or the error's class


@dataclass(frozen=True)
class Figures:
    parser: str
    name: str
    size: int
    outcome: str
    median_ms: float
    max_ms: float
    ratio: float = 0.0


def measure(case: Case, repetitions: int) -> Figures:
    outcome = case.run(case.data)  # warm-up, and the outcome to report
    times = []
    for _ in range(repetitions):
        start = time.process_time()
        case.run(case.data)
        times.append(time.process_time() - start)
    return Figures(
        case.parser,
        case.name,
        len(case.data),
        outcome,
        round(statistics.median(times) * 1000, 3),
        round(max(times) * 1000, 3),
    )


def _outcome(operation: Callable[[], object], errors: tuple[type[Exception], ...]) -> str:
    try:
        operation()
    except errors as error:
        return type(error).__name__
    return "accepted"


# --- Contact pairing requests (VeraId SignatureBundles) ---------------------------------------


def _request_plaintext() -> bytes:
    return serialise_contact_pairing_request(spki(new_rsa_key()), "bob@example.com")


def _pairing_runner(now: datetime, anchors: Sequence[veraid.TrustAnchor]) -> Callable[[bytes], str]:
    period = veraid.DatePeriod(now - timedelta(minutes=5), now)

    def run(bundle: bytes) -> str:
        def verify_and_parse() -> None:
            verification = veraid.verify_signature_bundle(
                bundle, LETRO_SERVICE_OID, period, trust_anchors=anchors
            )
            parse_contact_pairing_request(verification.plaintext)

        return _outcome(verify_and_parse, (veraid.VeraidError, LetroProtocolError))

    return run


def _read(bundle: bytes) -> str:
    return _outcome(lambda: veraid.read_signature_bundle(bundle), (veraid.VeraidError,))


def _bundle_cases(name: str, pki: Pki, bundle: bytes) -> list[Case]:
    return [
        Case(
            "contact pairing: verify + parse",
            name,
            bundle,
            _pairing_runner(pki.now, pki.trust_anchors),
        ),
        Case("read_signature_bundle", name, bundle, _read),
    ]


def _request(pki: Pki) -> bytes:
    return pki.member_signature(
        encapsulate=True, plaintext=_request_plaintext(), service=LETRO_SERVICE_OID
    )


@dataclass(frozen=True)
class Algorithm:
    name: str
    make_key: Callable[[], ZonePrivateKey]
    check_cost: int  # per signature check, as veraid._limits prices it
    junk_exponent_bits: int = 17
    rsa_root: bool = False  # an RSA-2048 root (as the real one), the algorithm below it


def _rsa(bits: int) -> Callable[[], ZonePrivateKey]:
    return lambda: rsa.generate_private_key(public_exponent=65537, key_size=bits)


ALGORITHMS = (
    Algorithm("RSA-2048", _rsa(2048), 1),
    Algorithm("RSA-4096", _rsa(4096), 4),
    Algorithm("RSA-4096, junk keys e=2^32+1", _rsa(4096), 8, junk_exponent_bits=33),
    Algorithm("P-256", lambda: ec.generate_private_key(ec.SECP256R1()), 4),
    # A chain of P-384 zones only would be over the signature budget from the root down.
    Algorithm("P-384", lambda: ec.generate_private_key(ec.SECP384R1()), 32, rsa_root=True),
    Algorithm("Ed25519", ed25519.Ed25519PrivateKey.generate, 7),
    Algorithm("Ed448", ed448.Ed448PrivateKey.generate, 13),
)


def _domain(depth: int) -> str:
    return ".".join(f"z{index}" for index in range(depth))


def _planned_cost(pki: Pki, domain: str) -> int | None:
    """The signature cost veraid computes for the chain before checking anything; None if
    the chain is over another limit."""
    try:
        responses = ChainResponses(pki.chain.responses)
        txt_name = dns.name.from_text(f"_veraid.{domain}.")
        txt = responses.signed_rrset(txt_name, dns.rdatatype.TXT, "TXT")
        checks = _plan(responses, txt, txt.rrsigs[0].signer, pki.trust_anchors)
        return sum(check.cost() for check in checks)
    except veraid.ChainLimitError:
        return None


def _shapes(algorithm: Algorithm) -> Iterator[tuple[int, ChainShape]]:
    """(depth, shape) from the costliest estimate down: every RRset checked with as many
    RRSIGs and colliding keys as the budget allows, as deep as the response limit allows."""
    candidates = []
    max_depth = (_limits.MAX_CHAIN_RESPONSES - 2) // 2
    for depth in range(1, max_depth + 1):
        rrsets = 2 * depth + 2
        for rrsigs in range(1, _limits.MAX_RRSIGS_PER_RRSET + 1):
            for keys in range(1, _limits.MAX_KEYS_PER_RRSIG + 1):
                # With an RSA root, its DNSKEY and the first DS are RSA-2048 checks.
                rsa_rrsets = 2 if algorithm.rsa_root else 0
                per_rrsig = (rrsets - rsa_rrsets) * algorithm.check_cost + rsa_rrsets
                cost = per_rrsig * rrsigs * keys
                if cost <= _limits.MAX_SIGNATURE_COST:
                    candidates.append((cost, rrsets, depth, rrsigs, keys))
    for _, rrsets, depth, rrsigs, keys in sorted(candidates, reverse=True):
        yield (
            depth,
            ChainShape(
                colliding_keys=keys - 1,
                delegate_junk=True,  # DS records name the colliders: DNSKEY RRsets try them
                rrsigs=rrsigs,
                extra_responses=_limits.MAX_CHAIN_RESPONSES - rrsets,
                junk_exponent_bits=algorithm.junk_exponent_bits,
            ),
        )


def _filled(shape: ChainShape, junk: int) -> ChainShape:
    """``junk`` more records in every response: DNSKEYs, DS records matching no key (each
    costs a digest of every key), unrelated records."""
    return replace(
        shape,
        extra_keys=max(junk, shape.colliding_keys),
        extra_ds=junk,
        extra_answers=junk,
    )


_ZONE_KEYS: dict[str, list[ZonePrivateKey]] = {}


def _zone_keys(algorithm: Algorithm, count: int) -> list[ZonePrivateKey]:
    keys = _ZONE_KEYS.setdefault(algorithm.name, [])
    while len(keys) < count:
        root = algorithm.rsa_root and not keys
        keys.append(rsa_key(10) if root else algorithm.make_key())
    return keys[:count]


def _admitted(algorithm: Algorithm, depth: int, shape: ChainShape) -> tuple[Pki, int] | None:
    """The chain of this shape with its responses filled with as much junk as the limits
    admit (a binary search), and its cost; None if even no junk is over a limit."""
    domain = _domain(depth)
    zone_keys = _zone_keys(algorithm, depth + 1)
    chain_cap = BODY_CAP - _BUNDLE_OVERHEAD
    rrsets = 2 * depth + 2
    low, high, best = 0, _limits.MAX_CHAIN_RECORDS // rrsets, None
    while low <= high:
        middle = (low + high) // 2
        pki = shaped_pki(_filled(shape, middle), domain=domain, zone_keys=zone_keys)
        cost = _planned_cost(pki, domain)
        fits = sum(map(len, pki.chain.responses)) <= chain_cap
        if cost is not None and cost <= _limits.MAX_SIGNATURE_COST and fits:
            best, low = (pki, cost), middle + 1
        else:
            high = middle - 1
    return best


def _records(pki: Pki) -> int:
    return sum(struct.unpack_from("!H", response, 6)[0] for response in pki.chain.responses)


def worst_admitted_chain(algorithm: Algorithm, tries: int = 3) -> tuple[Pki, str, int]:
    """The costliest chain of ``algorithm`` keys the limits admit, (pki, domain, cost): of
    the first shapes admitted, the one with the most signature work and answer records
    (about 25 µs per unit of cost, 35 µs per record)."""
    admitted = []
    for depth, shape in _shapes(algorithm):
        chain = _admitted(algorithm, depth, shape)
        if chain is not None:
            pki, cost = chain
            admitted.append((cost * 25 + _records(pki) * 35, pki, _domain(depth), cost))
            if len(admitted) == tries:
                break
    if not admitted:
        raise RuntimeError(f"No {algorithm.name} chain fits the limits")
    _, pki, domain, cost = max(admitted, key=lambda item: item[0])
    return pki, domain, cost


@dataclass(frozen=True)
class WorstChain:
    algorithm: str
    pki: Pki
    domain: str
    cost: int


def worst_chains() -> list[WorstChain]:
    return [WorstChain(a.name, *worst_admitted_chain(a)) for a in ALGORITHMS]


def chain_cases(chains: Sequence[WorstChain]) -> Iterator[Case]:
    genuine = make_pki()
    yield from _bundle_cases("genuine (floor)", genuine, _request(genuine))
    for chain in chains:
        records = _records(chain.pki)
        name = f"admitted chain, {chain.algorithm}: {chain.domain}, cost {chain.cost}, {records} rr"
        yield from _bundle_cases(name, chain.pki, _request(chain.pki))
    bloated = bloated_signature_bundle(
        organisation(genuine), plaintext=_request_plaintext(), service_oid=LETRO_SERVICE_OID
    )
    yield from _bundle_cases(
        "chain over the limits: 1100 junk DNSKEYs, 200 RRSIGs", genuine, bloated
    )


def _signature(pki: Pki, **options: object) -> bytes:
    return member_signature_with(
        pki,
        plaintext=_request_plaintext(),
        service_oid=LETRO_SERVICE_OID,
        **options,  # type: ignore[arg-type]
    )


def cms_cases() -> Iterator[Case]:
    """Bundles whose cost is outside the chain: CMS, DER, certificates."""
    pki = make_pki()
    certificates = _limits.MAX_SIGNED_DATA_CERTIFICATES
    others = [make_pki().member_certificate for _ in range(certificates)]
    yield from _bundle_cases(
        f"{certificates - 1} certificates before the signer's",
        pki,
        _signature(pki, certificates=others[:-1]),
    )
    yield from _bundle_cases(
        f"{certificates} certificates before the signer's",
        pki,
        _signature(pki, certificates=others),
    )
    yield from _bundle_cases(
        f"{certificates - 1} certificates at the element limit before the signer's",
        pki,
        _signature(pki, certificates=_bulky_certificates(pki, certificates - 1)),
    )
    yield from _bundle_cases(
        f"{_limits.MAX_SIGNED_ATTRIBUTES - 3} extra signed attributes of 1.5 KB",
        pki,
        _signature(pki, extra_attributes=_attributes(_limits.MAX_SIGNED_ATTRIBUTES - 3, 1500)),
    )
    yield from _bundle_cases(
        "2000 signed attributes", pki, _signature(pki, extra_attributes=_attributes(2000, 0))
    )
    long_key = long_exponent_key()
    member = veraid.issue_member_certificate(
        "alice",
        long_key.public_key(),
        pki.org_certificate,
        rsa_key(ORG_KEY),
        pki.period.start,
        pki.period.end,
    )
    yield from _bundle_cases(
        "member key RSA-3072 with a 3072-bit exponent",
        pki,
        _signature(pki, member_certificate=member, member_key=long_key),
    )
    most = _max_extensions(pki, "example.com")
    for extensions in (most, most + 1, 1500):
        bulky = _bulky_organisation(pki, "example.com", extensions)
        name = f"organisation certificate with {extensions} extensions"
        yield from _bundle_cases(name, bulky, _signature(bulky))


def _attributes(count: int, size: int) -> list[tuple[str, bytes]]:
    value = core.OctetString(b"x" * size).dump() if size else b"\x05\x00"
    return [(f"1.2.3.{index}", value) for index in range(count)]


# What one unrecognised junk extension adds to a certificate.
_EXTENSION_BYTES, _EXTENSION_ELEMENTS = 15, 3  # SEQUENCE { OID, OCTET STRING { NULL } }


def _max_extensions(pki: Pki, domain: str) -> int:
    """The most junk extensions an organisation certificate for ``domain`` can carry within
    MAX_CERTIFICATE_BYTES and MAX_CERTIFICATE_ELEMENTS."""
    plain = _bulky_organisation(pki, domain, 0).org_certificate
    elements = der_element_count(plain)
    return min(
        (_limits.MAX_CERTIFICATE_BYTES - len(plain)) // _EXTENSION_BYTES,
        (_limits.MAX_CERTIFICATE_ELEMENTS - elements) // _EXTENSION_ELEMENTS,
    )


def _bulky_organisation(pki: Pki, domain: str, extensions: int) -> Pki:
    """``pki`` with an organisation certificate (same key) carrying ``extensions`` junk
    extensions, and a member certificate it issued."""
    junk = [(f"1.2.3.{index}", b"\x05\x00", False) for index in range(extensions)]
    org = junk_organisation_certificate(pki.period, junk, domain)
    over = len(org) > _limits.MAX_CERTIFICATE_BYTES or (
        der_element_count(org) > _limits.MAX_CERTIFICATE_ELEMENTS
    )
    # One over a limit is refused before the member's certificate is read: none is issued.
    return with_organisation_certificate(pki, org, issue=not over)


def _bulky_certificates(pki: Pki, count: int) -> list[bytes]:
    """Valid certificates of other organisations with as many DER elements as
    MAX_CERTIFICATE_ELEMENTS allows: each costs the most the limits let it cost to load."""
    domains = [f"other{index}.example.com" for index in range(count)]
    return [
        _bulky_organisation(pki, domain, _max_extensions(pki, domain)).org_certificate
        for domain in domains
    ]


def combined_cases(chains: Sequence[WorstChain]) -> Iterator[Case]:
    """The costliest admitted chain that leaves room, with everything else at its limit in
    the same bundle: a bulky organisation certificate, bulky certificates before the
    signer's, signed attributes filling the body up to 32 KiB."""
    small = [chain for chain in chains if sum(map(len, chain.pki.chain.responses)) < 16 * 1024]
    chain = max(small, key=lambda c: c.cost * 25 + _records(c.pki) * 35)
    pki = _bulky_organisation(chain.pki, chain.domain, _max_extensions(chain.pki, chain.domain))
    others = _bulky_certificates(chain.pki, _limits.MAX_SIGNED_DATA_CERTIFICATES - 1)
    attributes = _limits.MAX_SIGNED_ATTRIBUTES - 3
    room = BODY_CAP - len(_signature(pki, certificates=others)) - attributes * 20
    bundle = _signature(
        pki, certificates=others, extra_attributes=_attributes(attributes, room // attributes)
    )
    name = f"all limits at once: {chain.algorithm} chain, bulky certificates, attributes"
    yield from _bundle_cases(name, pki, bundle)


# --- Other parsers ----------------------------------------------------------------------------


def _letro(parser: str, function: Callable[[bytes], object]) -> Callable[[str, bytes], Case]:
    def case(name: str, data: bytes) -> Case:
        return Case(
            parser, name, data, lambda d: _outcome(lambda: function(d), (LetroProtocolError,))
        )

    return case


def contact_request_cases() -> Iterator[Case]:
    case = _letro("parse_contact_pairing_request", parse_contact_pairing_request)
    key = spki(new_rsa_key())
    yield case("genuine", serialise_contact_pairing_request(key, "bob@example.com"))
    yield case(
        "30 KiB target id (2-byte UTF-8)", serialise_contact_pairing_request(key, "é" * 15000)
    )
    big = _random_rsa_key(16384).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    yield case(
        "RSA-16384 key, 30 KiB target id", serialise_contact_pairing_request(big, "é" * 14000)
    )
    # An AlgorithmIdentifier of an unknown OID whose parameters are 15000 NULLs.
    nulls = b"\x05\x00" * 15000
    algorithm = _der.tlv(0x30, core.ObjectIdentifier("1.2.3.4").dump() + _der.tlv(0x30, nulls))
    spki_flood = _der.tlv(0xA0, algorithm + _der.tlv(0x03, b"\x00" + b"k" * 10))
    yield case(
        "SPKI parameters of 15000 NULLs",
        _der.tlv(0x30, spki_flood + _der.tlv(0x81, b"bob@example.com")),
    )


def account_request_cases() -> Iterator[Case]:
    def parse_and_verify(data: bytes) -> None:
        verify_account_request(parse_account_request(data))

    case = _letro("parse_account_request + verify_account_request", parse_and_verify)

    def signed(key: rsa.RSAPrivateKey, name: str = "alice") -> bytes:
        request = serialise_account_request(name, "en", spki(key))
        signature = key.sign(request, padding.PKCS1v15(), hashes.SHA256())
        return serialise_account_request_signature(request, signature)

    yield case("genuine RSA-2048", signed(new_rsa_key()))
    yield case("RSA-2048, 30 KiB user name", signed(new_rsa_key(), "é" * 15000))
    # A random modulus: the signature cannot verify, but checking it costs the same.
    big = _random_rsa_key(16384).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    request = serialise_account_request("alice", "en", big)
    yield case("RSA-16384 key", serialise_account_request_signature(request, b"\x01" * 2048))
    yield case("RSA-3072 key with a 3072-bit exponent", signed(long_exponent_key()))


def _random_rsa_key(bits: int) -> rsa.RSAPublicKey:
    modulus = secrets.randbits(bits) | (1 << (bits - 1)) | 1
    return rsa.RSAPublicNumbers(65537, modulus).public_key()


def connection_params_cases() -> Iterator[Case]:
    from awala.private_endpoint_conn_params import InvalidPrivateEndpointConnParams

    def case(name: str, data: bytes) -> Case:
        return Case(
            "read_connection_params",
            name,
            data,
            lambda d: _outcome(
                lambda: read_connection_params(d), (InvalidPrivateEndpointConnParams,)
            ),
        )

    granter, grantee = new_rsa_key(), new_rsa_key()
    genuine = connection_params(granter, grantee)
    yield case("genuine", genuine)
    yield case("30 CA certificates", _with_authorities(genuine, 30))


def _with_authorities(params: bytes, count: int) -> bytes:
    from asn1crypto import x509 as asn1_x509

    from awala.private_endpoint_conn_params import _PrivateEndpointConnParams

    decoded = _PrivateEndpointConnParams.load(params)
    authority = decoded["delivery_auth"]["certificate_authorities"][0]
    copies = [asn1_x509.Certificate.load(authority.dump()) for _ in range(count)]
    decoded["delivery_auth"]["certificate_authorities"] = copies
    encoded: bytes = decoded.dump(force=True)
    return encoded


def legacy_pairing_cases() -> Iterator[Case]:
    case = _letro("parse_pairing_request", parse_pairing_request)
    key = base64.b64encode(spki(new_rsa_key())).decode()
    yield case("genuine", f"alice@example.com,bob@example.com,{key}".encode())
    name = "é" * 8000
    domain = ".".join(letter * 60 for letter in "abcd") + ".com"
    yield case(
        "16 KiB user names, 253-byte domains, RSA key",
        f"{name}@{domain},{name}@x.com,{key}".encode(),
    )
    yield case("30 KiB base64 key", f"alice@example.com,bob@example.com,{'A' * 30000}".encode())


def connection_params_request_cases() -> Iterator[Case]:
    case = _letro("parse_connection_params_request", parse_connection_params_request)
    yield case("genuine", b"braavos.relaycorp.cloud")
    yield case("126 bytes of IDN labels", (".".join(["ü" * 20] * 3) + ".com").encode())
    yield case("129 bytes", b"a" * 125 + b".com")


# --- Report -----------------------------------------------------------------------------------


def all_cases() -> Iterator[Case]:
    chains = worst_chains()
    yield from chain_cases(chains)
    yield from cms_cases()
    yield from combined_cases(chains)
    yield from contact_request_cases()
    yield from account_request_cases()
    yield from connection_params_cases()
    yield from legacy_pairing_cases()
    yield from connection_params_request_cases()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=30)
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to (default: first)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    log = sys.stderr if args.json else sys.stdout  # --json: nothing but JSON on stdout
    print(
        f"Pinned to CPU {cpu}; {args.repetitions} repetitions; load {os.getloadavg()[0]:.2f}",
        file=log,
    )
    print("Building the inputs...", file=log, flush=True)
    cases = list(all_cases())
    # As the worker does with its start-up objects: the inputs built here would otherwise
    # make every full collection during the measurements long, and the max a GC figure.
    gc.collect()
    gc.freeze()
    figures = [measure(case, args.repetitions) for case in cases]
    floor = figures[0].median_ms
    figures = [replace(f, ratio=round(f.median_ms / floor, 2)) for f in figures]
    if args.json:
        print(json.dumps([asdict(f) for f in figures], indent=2))
        return
    _print_table(figures)
    _print_verdict(figures)
    sys.stdout.flush()


def _by_parser(figures: Sequence[Figures]) -> dict[str, list[Figures]]:
    groups: dict[str, list[Figures]] = {}
    for f in figures:
        groups.setdefault(f.parser, []).append(f)
    return groups


def _print_table(figures: Sequence[Figures]) -> None:
    for parser, group in _by_parser(figures).items():
        print(f"\n{parser}")
        print(f"  {'input':<66} {'bytes':>6} {'median':>8} {'max':>8} {'x floor':>7}  outcome")
        for f in group:
            print(
                f"  {f.name[:66]:<66} {f.size:>6} {f.median_ms:>6.2f}ms {f.max_ms:>6.2f}ms"
                f" {f.ratio:>7.2f}  {f.outcome}"
            )


def _print_verdict(figures: Sequence[Figures]) -> None:
    print("\nWorst input of each parser (median, max, x floor):")
    for parser, group in _by_parser(figures).items():
        worst = max(group, key=lambda f: f.median_ms)
        print(
            f"  {parser:<48} {worst.median_ms:6.2f} ms {worst.max_ms:6.2f} ms {worst.ratio:5.2f}"
            f"  ({worst.name})"
        )
    pairing = [f for f in figures if f.parser.startswith("contact pairing")]
    worst = max(pairing, key=lambda f: f.median_ms)
    verdict = "met" if worst.median_ms <= TARGET_MS else "NOT met"
    print(f"Contact pairing target {TARGET_MS:g} ms of CPU per request (median): {verdict}")
    print(f"Load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
