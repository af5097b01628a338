"""The DNSSEC chain of a VeraId organisation, verified offline with dnspython.

A chain is a set of complete DNS response messages, one per query made while resolving
``_veraid.<domain>/TXT`` (not the single message the specification describes): facts from
``@relaycorp/veraid`` 3.1.2 ``dns/VeraidDnssecChain.js`` and ``@relaycorp/dnssec`` 1.12.0
``UnverifiedChain.js``. Responses are looked up by question, so their order is irrelevant.

Unlike ``@relaycorp/dnssec``, which accepts each signature valid at *some* instant of the
period, every signature of the chain must be valid at one common instant (as in veraid-jvm
and the DomainAuth draft).

The work is bounded (``_limits``): every RRset the chain needs is parsed, and the cost of its
signature checks priced, before any check is made (``_dnssec``).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dns.dnssec
import dns.dnssectypes
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.TXT
import dns.rrset
from cryptography.hazmat.primitives.asymmetric import rsa

from veraid._dnssec import (
    ChainResponses,
    Check,
    Interval,
    SignedRRset,
    ZoneKey,
    check_cost,
    intersect,
    zone_keys,
)
from veraid._errors import (
    DnssecError,
    MalformedError,
    ServiceMismatchError,
    TxtRecordError,
    ValidityPeriodError,
)
from veraid._periods import DatePeriod
from veraid._pki import KeySpec, key_spec

MAX_TTL_OVERRIDE = timedelta(days=90)
_MAX_TTL_OVERRIDE_SECONDS = int(MAX_TTL_OVERRIDE.total_seconds())
_DS_DIGESTS = {1: "sha1", 2: "sha256", 4: "sha384"}


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """A DS record of the root zone that DNSSEC validation starts from."""

    key_tag: int
    algorithm: int
    digest_type: int
    digest: bytes


# The root zone's KSK-2017 and KSK-2024 (https://data.iana.org/root-anchors/root-anchors.xml).
IANA_TRUST_ANCHORS: tuple[TrustAnchor, ...] = (
    TrustAnchor(
        20326,
        8,
        2,
        bytes.fromhex("E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"),
    ),
    TrustAnchor(
        38696,
        8,
        2,
        bytes.fromhex("683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16"),
    ),
)


# --- The _veraid TXT record ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TxtRdata:
    """One ``_veraid`` TXT record: ``<alg> <keyId> <ttlOverride> [<serviceOid>]``."""

    key_algorithm: int
    key_id: str
    ttl_override: int
    service_oid: str | None = None


def generate_txt_rdata(
    public_key: rsa.RSAPublicKey, ttl_override: timedelta, service_oid: str | None = None
) -> str:
    """The text of the organisation's ``_veraid`` TXT record (at most 90 days of TTL override)."""
    seconds = int(ttl_override.total_seconds())
    if seconds < 0 or seconds > _MAX_TTL_OVERRIDE_SECONDS:
        raise TxtRecordError(f"TTL override must be between 0 and 90 days (got {seconds} s)")
    spec = key_spec(public_key)
    fields = [str(spec.algorithm), spec.key_id, str(seconds)]
    if service_oid is not None:
        fields.append(service_oid)
    return " ".join(fields)


def parse_txt_rdata(text: str) -> TxtRdata:
    """Parse the text of a ``_veraid`` TXT record; a TTL override over 90 days is clamped."""
    fields = text.split()
    if len(fields) < 3:
        raise TxtRecordError(f"TXT record should have at least 3 fields (got {len(fields)})")
    algorithm_text, key_id, ttl_text = fields[:3]
    if algorithm_text not in ("1", "2", "3"):
        raise TxtRecordError(f"Unknown key algorithm ({algorithm_text!r})")
    if not (ttl_text.isascii() and ttl_text.isdigit()):
        raise TxtRecordError(f"Malformed TTL override ({ttl_text!r})")
    ttl = min(int(ttl_text), _MAX_TTL_OVERRIDE_SECONDS)
    service_oid = fields[3] if len(fields) > 3 else None
    return TxtRdata(int(algorithm_text), key_id, ttl, service_oid)


def select_ttl_override(records: Sequence[str], spec: KeySpec, service_oid: str) -> int:
    """The TTL override of the one record for this key and service (a service-specific record
    taking precedence over a generic one)."""
    parsed = [parse_txt_rdata(record) for record in records]
    for_key = [r for r in parsed if (r.key_algorithm, r.key_id) == (spec.algorithm, spec.key_id)]
    if not for_key:
        raise TxtRecordError("No VeraId TXT record matches the organisation key")
    specific = [r for r in for_key if r.service_oid == service_oid]
    generic = [r for r in for_key if r.service_oid is None]
    candidates = specific or generic
    if not candidates:
        raise ServiceMismatchError(
            f"The VeraId TXT records are for other services than {service_oid}"
        )
    if len(candidates) > 1:
        raise TxtRecordError("Several VeraId TXT records match the organisation key and service")
    return candidates[0].ttl_override


# --- Chain validation -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainValidation:
    """What validating a chain's bytes established: the TXT records of ``_veraid.<domain>``
    and the instants at which every signature on the path was valid (disjoint intervals)."""

    txt_records: tuple[str, ...]
    valid_intervals: tuple[Interval, ...]

    def verify_during(self, period: DatePeriod) -> DatePeriod:
        """The first part of ``period`` during which the whole chain is valid."""
        start, end = int(period.start.timestamp()), int(period.end.timestamp())
        for low, high in self.valid_intervals:
            low, high = max(low, start), min(high, end)
            if low <= high:
                return DatePeriod(_from_posix(low), _from_posix(high))
        raise ValidityPeriodError(
            f"The DNSSEC signatures are not valid during the required period ({period})"
        )


def _from_posix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _ds_digest(owner: bytes, key: ZoneKey, digest_type: int) -> bytes | None:
    digest_name = _DS_DIGESTS.get(digest_type)
    if digest_name is None:
        return None
    return hashlib.new(digest_name, owner + key.wire).digest()  # RFC 4034 §5.1.4


def _entry_keys(
    zone: dns.name.Name, keys: Sequence[ZoneKey], delegation: Sequence[TrustAnchor]
) -> list[ZoneKey]:
    """The keys a DS record (or trust anchor) of the zone designates."""
    owner = zone.canonicalize().to_digestable()
    entry = []
    for key in keys:
        # The key tag only narrows the search (RFC 4034 §5.2); the digest decides. Each
        # digest is computed once per key, whatever the number of DS records.
        digests: dict[int, bytes | None] = {}
        for ds in delegation:
            if key.dnskey.algorithm != ds.algorithm:
                continue
            if ds.digest_type not in digests:
                digests[ds.digest_type] = _ds_digest(owner, key, ds.digest_type)
            if digests[ds.digest_type] == ds.digest:
                entry.append(key)
                break
    if not entry:
        raise DnssecError(f"No DNSKEY of {zone} matches its DS records or trust anchors")
    return entry


def _delegation(ds_rrset: SignedRRset) -> list[TrustAnchor]:
    return [
        TrustAnchor(ds.key_tag, ds.algorithm, ds.digest_type, ds.digest)
        for ds in ds_rrset.records
        if isinstance(ds, dns.rdtypes.ANY.DS.DS)
    ]


def _zone_checks(
    responses: ChainResponses, zone: dns.name.Name, delegation: Sequence[TrustAnchor]
) -> tuple[Check, list[ZoneKey]]:
    """The check of a zone's DNSKEY RRset (by its entry keys) and all its keys."""
    dnskeys = responses.signed_rrset(zone, dns.rdatatype.DNSKEY, "DNSKEY")
    keys = zone_keys(dnskeys)
    return Check(dnskeys, zone, _entry_keys(zone, keys, delegation)), keys


def _zones(apex: dns.name.Name) -> list[dns.name.Name]:
    """The root, then every zone down to ``apex``."""
    return [apex.split(depth)[1] for depth in range(1, len(apex) + 1)]


def _zone_questions(zones: Sequence[dns.name.Name]) -> list[tuple[dns.name.Name, int, str]]:
    questions: list[tuple[dns.name.Name, int, str]] = []
    questions += [(zone, dns.rdatatype.DNSKEY, "DNSKEY") for zone in zones]
    return questions + [(zone, dns.rdatatype.DS, "DS") for zone in zones[1:]]


def _plan(
    responses: ChainResponses,
    txt: SignedRRset,
    apex: dns.name.Name,
    trust_anchors: Sequence[TrustAnchor],
) -> list[Check]:
    """Every check the chain needs, from the root down, its RRsets all parsed (and within
    the limits) before any signature is checked."""
    zones = _zones(apex)
    # The TXT response is parsed already (its RRSIG names the apex); count it too.
    responses.check_record_count([*_zone_questions(zones), (txt.name, dns.rdatatype.TXT, "TXT")])
    check, keys = _zone_checks(responses, dns.name.root, trust_anchors)
    checks = [check]
    for parent, zone in itertools.pairwise(zones):
        ds_rrset = responses.signed_rrset(zone, dns.rdatatype.DS, "DS")
        checks.append(Check(ds_rrset, parent, keys))
        check, keys = _zone_checks(responses, zone, _delegation(ds_rrset))
        checks.append(check)
    checks.append(Check(txt, apex, keys))
    return checks


def _txt_strings(txt: SignedRRset) -> tuple[str, ...]:
    records = []
    for rdata in txt.records:
        strings = rdata.strings if isinstance(rdata, dns.rdtypes.ANY.TXT.TXT) else ()
        if len(strings) != 1:
            raise TxtRecordError(f"A VeraId TXT record must be one string (got {len(strings)})")
        try:
            records.append(strings[0].decode("ascii"))
        except UnicodeDecodeError:
            raise TxtRecordError("A VeraId TXT record is not ASCII") from None
    return tuple(records)


def validate_chain(
    chain: Sequence[bytes], domain: str, trust_anchors: Sequence[TrustAnchor]
) -> ChainValidation:
    """Validate the DNSSEC chain of ``_veraid.<domain>/TXT`` from the trust anchors down.

    The result does not depend on the time: it records when the chain is valid. A chain
    over a limit of ``veraid._limits`` raises ChainLimitError before any signature check.
    """
    try:
        txt_name = dns.name.from_text(f"_veraid.{domain.rstrip('.')}.")
    except (dns.exception.DNSException, UnicodeError) as error:
        raise MalformedError(
            f"Organisation name {domain!r} is not a domain name: {error}"
        ) from None
    responses = ChainResponses(chain)
    txt = responses.signed_rrset(txt_name, dns.rdatatype.TXT, "TXT")
    apex = txt.rrsigs[0].signer
    if not txt_name.is_subdomain(apex):
        raise DnssecError(f"The TXT records of {txt_name} are signed by an unrelated zone ({apex})")
    checks = _plan(responses, txt, apex, trust_anchors)
    check_cost(checks)
    intervals = checks[0].valid_intervals()
    for check in checks[1:]:
        intervals = intersect(intervals, check.valid_intervals())
    if not intervals:
        raise ValidityPeriodError("The DNSSEC signatures of the chain are never valid together")
    return ChainValidation(_txt_strings(txt), tuple(intervals))


def verification_period(
    validation: ChainValidation, spec: KeySpec, service_oid: str, period: DatePeriod
) -> DatePeriod:
    """Apply the TTL override to ``period`` and check the chain is valid within it."""
    ttl = select_ttl_override(validation.txt_records, spec, service_oid)
    ttl_period = DatePeriod(period.end - timedelta(seconds=ttl), period.end)
    overridden = period.intersect(ttl_period)
    if overridden is None:  # pragma: no cover - ttl_period ends where period ends
        raise ValidityPeriodError("TTL override leaves no period")
    return validation.verify_during(overridden)


# --- Mock chains ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MockChain:
    """A self-contained DNSSEC chain for ``_veraid.<domain>`` and the trust anchor it needs."""

    responses: tuple[bytes, ...]
    trust_anchor: TrustAnchor


def generate_mock_chain(
    domain: str,
    txt_records: Sequence[str],
    period: DatePeriod,
    zone_keys: Sequence[rsa.RSAPrivateKey] | None = None,
) -> MockChain:
    """Sign a DNSSEC chain for the TXT records of ``_veraid.<domain>`` with RSASHA256, one
    key per zone from the root down (``zone_keys[0]`` for the root; new RSA-2048 keys if
    None), valid over ``period``.

    For tests and development authorities only: the trust anchor is the root key's own DS.
    """
    try:
        apex = dns.name.from_text(f"{domain.rstrip('.')}.")
    except (dns.exception.DNSException, UnicodeError) as error:
        raise MalformedError(f"{domain!r} is not a domain name: {error}") from None
    zones = [apex.split(depth)[1] for depth in range(1, len(apex) + 1)]
    if zone_keys is None:
        zone_keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in zones]
    if len(zone_keys) != len(zones):
        raise DnssecError(f"{len(zones)} zone keys are needed for {apex} (got {len(zone_keys)})")
    inception = int(period.start.timestamp())
    expiration = int(period.end.timestamp())
    ttl = 300
    dnskeys = [
        dns.dnssec.make_dnskey(key.public_key(), dns.dnssectypes.Algorithm.RSASHA256, flags=257)
        for key in zone_keys
    ]

    def signed_response(
        rrset: dns.rrset.RRset,
        key: rsa.RSAPrivateKey,
        signer: dns.name.Name,
        dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY,
    ) -> bytes:
        rrsig = dns.dnssec.sign(rrset, key, signer, dnskey, inception, expiration)
        message = dns.message.Message()
        message.flags |= dns.flags.QR
        message.question.append(dns.rrset.RRset(rrset.name, dns.rdataclass.IN, rrset.rdtype))
        message.answer.append(rrset)
        message.answer.append(dns.rrset.from_rdata(rrset.name, ttl, rrsig))
        return message.to_wire()

    responses = []
    for index, (zone, key, dnskey) in enumerate(zip(zones, zone_keys, dnskeys, strict=True)):
        keys_rrset = dns.rrset.from_rdata(zone, ttl, dnskey)
        responses.append(signed_response(keys_rrset, key, zone, dnskey))
        if index:
            ds = dns.dnssec.make_ds(zone, dnskey, "SHA256")
            parent = zones[index - 1]
            ds_rrset = dns.rrset.from_rdata(zone, ttl, ds)
            responses.append(
                signed_response(ds_rrset, zone_keys[index - 1], parent, dnskeys[index - 1])
            )
    txt_name = dns.name.from_text("_veraid", apex)
    txt_rrset = dns.rrset.from_rdata_list(
        txt_name,
        ttl,
        [
            dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [record.encode()])
            for record in txt_records
        ],
    )
    responses.append(signed_response(txt_rrset, zone_keys[-1], apex, dnskeys[-1]))
    root_ds = dns.dnssec.make_ds(dns.name.root, dnskeys[0], "SHA256")
    anchor = TrustAnchor(root_ds.key_tag, root_ds.algorithm, root_ds.digest_type, root_ds.digest)
    return MockChain(tuple(responses), anchor)
