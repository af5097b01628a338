"""The DNSSEC mechanics of chain validation, with its work bounded (``_limits``).

* Responses are read only as far as needed (question, then answer section), and only after
  their sizes and record counts, taken from the wire, are within the limits.
* Each RRset's canonical form (RFC 4034 §6.3) is built once per original TTL and label count,
  whatever the number of RRSIGs over it (``dns.dnssec.validate_rrsig`` rebuilds it for every
  RRSIG, which makes a bloated RRset cost the square of its size).
* The signature checks a chain may need are counted, and priced, before any is made.

The rules of ``dns.dnssec.validate_rrsig`` are kept: the key's algorithm, tag, ZONE flag and
protocol must match, a revoked key may only sign DNSKEY RRsets, the owner name must have at
least the RRSIG's label count (fewer: a wildcard), and every candidate key is tried.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import dns.dnssecalgs
import dns.dnssecalgs.base
import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.RRSIG
import dns.wire
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from veraid._errors import ChainLimitError, DnssecError, MalformedError
from veraid._limits import (
    MAX_ANSWER_RECORDS,
    MAX_CHAIN_BYTES,
    MAX_CHAIN_RECORDS,
    MAX_CHAIN_RESPONSES,
    MAX_KEYS_PER_RRSIG,
    MAX_RESPONSE_BYTES,
    MAX_RRSET_RECORDS,
    MAX_RRSIGS_PER_RRSET,
    MAX_RSA_EXPONENT_BITS,
    MAX_RSA_MODULUS_BITS,
    MAX_SIGNATURE_COST,
    RSA_ALGORITHMS,
    SIGNATURE_COSTS,
)

Interval = tuple[int, int]  # POSIX seconds, both ends included

DNSKEY = dns.rdtypes.ANY.DNSKEY.DNSKEY
RRSIG = dns.rdtypes.ANY.RRSIG.RRSIG

_WIRE_ERRORS = (dns.exception.DNSException, ValueError, UnicodeError, IndexError, struct.error)
_HEADER_LENGTH = 12
_ZONE_FLAG = 0x0100
_REVOKE_FLAG = 0x0080
_RSAMD5 = 1


# --- Intervals --------------------------------------------------------------------------------


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """The same instants as disjoint, sorted intervals: a signature valid at any instant of
    one of several RRSIGs makes the RRset valid then."""
    merged: list[Interval] = []
    for low, high in sorted(intervals):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The instants in both lists of disjoint intervals (disjoint, sorted)."""
    result = []
    for a_low, a_high in a:
        for b_low, b_high in b:
            low, high = max(a_low, b_low), min(a_high, b_high)
            if low <= high:
                result.append((low, high))
    return sorted(result)


# --- Responses --------------------------------------------------------------------------------

_Rdata = TypeVar("_Rdata", bound=dns.rdata.Rdata)
_Record = tuple[dns.name.Name, int, int, dns.rdata.Rdata, bytes]  # ..., rdata, its wire
_QuestionKey = tuple[dns.name.Name, int, int]


def _malformed(error: Exception) -> MalformedError:
    return MalformedError(f"A DNS message of the chain is malformed: {error}")


@dataclass(frozen=True, slots=True)
class _Response:
    """A response read as far as its question; the answer section is parsed on demand.

    (``dns.message.from_wire`` builds every section and was most of a verification's time.)
    """

    rcode: int
    answer_count: int
    answers_offset: int
    wire: bytes

    def answers(self, what: str, name: dns.name.Name) -> list[_Record]:
        if self.answer_count > MAX_ANSWER_RECORDS:
            raise ChainLimitError(
                f"The {what} response for {name} has {self.answer_count} answer records"
                f" (at most {MAX_ANSWER_RECORDS})"
            )
        parser = dns.wire.Parser(self.wire, self.answers_offset)
        records = []
        try:
            for _ in range(self.answer_count):
                owner = parser.get_name(decompress=True)
                rdtype, rdclass, _ttl, length = parser.get_struct("!HHIH")
                raw = self.wire[parser.current : parser.current + length]
                with parser.restrict_to(length):
                    rdata = dns.rdata.from_wire_parser(rdclass, rdtype, parser)
                records.append((owner, rdtype, rdclass, rdata, raw))
        except _WIRE_ERRORS as error:
            raise _malformed(error) from None
        return records


def _read_question(wire: bytes) -> tuple[_QuestionKey, _Response] | None:
    try:
        if len(wire) < _HEADER_LENGTH:
            raise MalformedError("A DNS message of the chain is shorter than its header")
        flags, question_count, answer_count = struct.unpack_from("!2xHHH", wire)
        if question_count != 1:
            return None  # answers no question: never looked up
        parser = dns.wire.Parser(wire, _HEADER_LENGTH)
        name = parser.get_name(decompress=True)
        rdtype, rdclass = parser.get_struct("!HH")
    except _WIRE_ERRORS as error:
        raise _malformed(error) from None
    return (name, rdtype, rdclass), _Response(flags & 0xF, answer_count, parser.current, wire)


def check_chain_size(chain: Sequence[bytes]) -> None:
    """Refuse a chain with too many or too large responses."""
    if len(chain) > MAX_CHAIN_RESPONSES:
        raise ChainLimitError(
            f"The chain has {len(chain)} responses (at most {MAX_CHAIN_RESPONSES})"
        )
    largest = max(map(len, chain), default=0)
    if largest > MAX_RESPONSE_BYTES:
        raise ChainLimitError(
            f"A response of the chain has {largest} bytes (at most {MAX_RESPONSE_BYTES})"
        )
    total = sum(map(len, chain))
    if total > MAX_CHAIN_BYTES:
        raise ChainLimitError(f"The chain has {total} bytes (at most {MAX_CHAIN_BYTES})")


@dataclass(frozen=True, slots=True)
class SignedRRset:
    """A DNSKEY, DS or TXT RRset of a response (duplicates dropped, as in an RFC 4034 §6.3
    RRset) with the RRSIGs over it.

    ``wires`` are the records' wire forms, which for these types (no domain names in their
    rdata) are also their canonical forms: hashing them and building the RRset's canonical
    form needs no re-encoding.
    """

    name: dns.name.Name
    rdtype: int
    what: str
    records: tuple[dns.rdata.Rdata, ...]
    wires: tuple[bytes, ...]
    rrsigs: tuple[RRSIG, ...]


def _unique(records: Iterable[tuple[bytes, _Rdata]]) -> dict[bytes, _Rdata]:
    """The records by wire form, first occurrence first (dnspython compares rdata by their
    canonical form, which needs re-encoding each one)."""
    unique: dict[bytes, _Rdata] = {}
    for wire, rdata in records:
        unique.setdefault(wire, rdata)
    return unique


class ChainResponses:
    """The responses of a chain, looked up by question (their order is irrelevant)."""

    def __init__(self, chain: Sequence[bytes]) -> None:
        check_chain_size(chain)
        self._by_question: dict[_QuestionKey, list[_Response]] = {}
        for wire in chain:
            read = _read_question(wire)
            if read is not None:
                self._by_question.setdefault(read[0], []).append(read[1])

    def _response(self, name: dns.name.Name, rdtype: int, what: str) -> _Response:
        responses = self._by_question.get((name, rdtype, dns.rdataclass.IN))
        if not responses:
            raise DnssecError(f"The chain has no {what} response for {name}")
        # Like @relaycorp/veraid, zone responses are looked up first-match; only the TXT
        # response must be unique, or the TTL override could come from an unverified copy.
        if len(responses) > 1 and rdtype == dns.rdatatype.TXT:
            raise DnssecError(f"The chain has several {what} responses for {name}")
        if responses[0].rcode != dns.rcode.NOERROR:
            raise DnssecError(f"The {what} response for {name} is not NOERROR")
        return responses[0]

    def check_record_count(self, questions: Iterable[tuple[dns.name.Name, int, str]]) -> None:
        """Refuse the chain if the responses to ``questions`` hold too many answer records
        (counted from their headers, before any is parsed)."""
        total = sum(self._response(*question).answer_count for question in questions)
        if total > MAX_CHAIN_RECORDS:
            raise ChainLimitError(
                f"The chain's responses hold {total} answer records (at most {MAX_CHAIN_RECORDS})"
            )

    def signed_rrset(self, name: dns.name.Name, rdtype: int, what: str) -> SignedRRset:
        records: list[tuple[bytes, dns.rdata.Rdata]] = []
        rrsigs: list[tuple[bytes, RRSIG]] = []
        response = self._response(name, rdtype, what)
        for owner, record_type, record_class, rdata, wire in response.answers(what, name):
            if owner != name or record_class != dns.rdataclass.IN:
                continue
            if record_type == rdtype:
                records.append((wire, rdata))
            elif isinstance(rdata, RRSIG) and rdata.type_covered == rdtype:
                rrsigs.append((wire, rdata))
        _check_rrset_size(name, what, len(records), len(rrsigs))
        if not records:
            raise DnssecError(f"The {what} response for {name} has no {what} records")
        if not rrsigs:
            raise DnssecError(f"The {what} records of {name} are unsigned")
        unique = _unique(records)
        return SignedRRset(
            name,
            rdtype,
            what,
            tuple(unique.values()),
            tuple(unique),
            tuple(_unique(rrsigs).values()),
        )


def _check_rrset_size(name: dns.name.Name, what: str, records: int, rrsigs: int) -> None:
    if records > MAX_RRSET_RECORDS:
        raise ChainLimitError(
            f"The {what} RRset of {name} has {records} records (at most {MAX_RRSET_RECORDS})"
        )
    if rrsigs > MAX_RRSIGS_PER_RRSET:
        raise ChainLimitError(
            f"The {what} RRset of {name} has {rrsigs} RRSIGs (at most {MAX_RRSIGS_PER_RRSET})"
        )


# --- Keys -------------------------------------------------------------------------------------


def key_tag(dnskey: DNSKEY, wire: bytes) -> int:
    """RFC 4034 appendix B over the DNSKEY's ``wire`` form, summed in C (``DNSKEY.key_id``
    re-encodes the key and loops over its bytes in Python)."""
    if dnskey.algorithm == _RSAMD5:
        return (wire[-3] << 8) + wire[-2]
    if len(wire) % 2:
        wire += b"\0"
    total: int = sum(struct.unpack(f"!{len(wire) // 2}H", wire))
    total += (total >> 16) & 0xFFFF
    return total & 0xFFFF


def _rsa_cost(key: bytes) -> int:
    """The cost of an RSA check (RFC 3110 key: exponent length, exponent, modulus)."""
    if not key:
        return 1  # refused when loaded, cheaply
    exponent_length, offset = (key[0], 1) if key[0] else (int.from_bytes(key[1:3], "big"), 3)
    exponent_bits = int.from_bytes(key[offset : offset + exponent_length], "big").bit_length()
    modulus_bits = int.from_bytes(key[offset + exponent_length :], "big").bit_length()
    if modulus_bits > MAX_RSA_MODULUS_BITS:
        raise ChainLimitError(
            f"An RSA DNSKEY has {modulus_bits} bits (at most {MAX_RSA_MODULUS_BITS})"
        )
    if exponent_bits > MAX_RSA_EXPONENT_BITS:
        raise ChainLimitError(
            f"An RSA DNSKEY has a {exponent_bits}-bit exponent (at most {MAX_RSA_EXPONENT_BITS})"
        )
    # Verification squares once per exponent bit, each squaring quadratic in the modulus.
    return math.ceil(modulus_bits**2 * max(exponent_bits, 17) / (2048**2 * 17)) or 1


class ZoneKey:
    """A DNSKEY with its wire form and key tag, and its verifier built on first use."""

    __slots__ = ("_verifier", "dnskey", "tag", "wire")

    def __init__(self, dnskey: DNSKEY, wire: bytes) -> None:
        self.dnskey = dnskey
        self.wire = wire
        self.tag = key_tag(dnskey, wire)
        self._verifier: dns.dnssecalgs.base.GenericPublicKey | None = None

    @property
    def supported(self) -> bool:
        """Whether this library checks signatures of this algorithm (those of
        ``@relaycorp/dnssec`` and RSASHA1-NSEC3-SHA1; dnspython's policy refuses the others)."""
        return self.dnskey.algorithm in RSA_ALGORITHMS or self.dnskey.algorithm in SIGNATURE_COSTS

    def cost(self) -> int:
        if self.dnskey.algorithm in RSA_ALGORITHMS:
            return _rsa_cost(self.dnskey.key)
        return SIGNATURE_COSTS[self.dnskey.algorithm]

    def verifies(self, signature: bytes, data: bytes) -> bool:
        try:
            if self._verifier is None:
                algorithm = dns.dnssecalgs.get_algorithm_cls_from_dnskey(self.dnskey)
                self._verifier = algorithm.public_cls.from_dnskey(self.dnskey)
            self._verifier.verify(signature, data)
        except (InvalidSignature, UnsupportedAlgorithm, ValueError, dns.exception.DNSException):
            return False  # a key that cannot be loaded verifies nothing, as in dnspython
        return True


def zone_keys(rrset: SignedRRset) -> list[ZoneKey]:
    return [
        ZoneKey(dnskey, wire)
        for dnskey, wire in zip(rrset.records, rrset.wires, strict=True)
        if isinstance(dnskey, DNSKEY)
    ]


def _candidates(keys: Sequence[ZoneKey], rrsig: RRSIG) -> list[ZoneKey]:
    """The keys ``rrsig`` could be made with (``dns.dnssec``'s candidate keys)."""
    candidates = [
        key
        for key in keys
        if key.tag == rrsig.key_tag
        and key.dnskey.algorithm == rrsig.algorithm
        and key.dnskey.flags & _ZONE_FLAG
        and key.dnskey.protocol == 3
        and (not key.dnskey.flags & _REVOKE_FLAG or rrsig.type_covered == dns.rdatatype.DNSKEY)
        and key.supported
    ]
    if len(candidates) > MAX_KEYS_PER_RRSIG:
        raise ChainLimitError(
            f"An RRSIG matches {len(candidates)} DNSKEYs of {rrsig.signer} by algorithm and"
            f" key tag (at most {MAX_KEYS_PER_RRSIG})"
        )
    return candidates


# --- Signature checks -------------------------------------------------------------------------


def _signed_owner(name: dns.name.Name, labels: int) -> dns.name.Name | None:
    """The owner name an RRSIG with ``labels`` labels signs (RFC 4035 §5.3.2); None if it
    cannot sign ``name``."""
    name_length = len(name)
    if name.is_wild() and labels != name_length - 2:
        return None
    if name_length - 1 < labels:
        return None
    if labels < name_length - 1:
        return dns.name.from_text("*", name.split(labels + 1)[1])
    return name


class _CanonicalRRset:
    """The canonical form of an RRset, built once per (original TTL, labels)."""

    def __init__(self, rrset: SignedRRset) -> None:
        self._rrset = rrset
        self._records = [struct.pack("!H", len(wire)) + wire for wire in sorted(rrset.wires)]
        self._forms: dict[tuple[int, int], bytes] = {}

    def form(self, owner: dns.name.Name, original_ttl: int, labels: int) -> bytes:
        key = (original_ttl, labels)
        form = self._forms.get(key)
        if form is None:
            prefix = owner.to_digestable() + struct.pack(
                "!HHI", self._rrset.rdtype, dns.rdataclass.IN, original_ttl
            )
            form = b"".join(prefix + record for record in self._records)
            self._forms[key] = form
        return form


def _rrsig_header(rrsig: RRSIG) -> bytes:
    """The RRSIG rdata without its signature (RFC 4034 §3.1.8.1), signer name canonical."""
    return (
        struct.pack(
            "!HBBIIIH",
            rrsig.type_covered,
            rrsig.algorithm,
            rrsig.labels,
            rrsig.original_ttl,
            rrsig.expiration,
            rrsig.inception,
            rrsig.key_tag,
        )
        + rrsig.signer.to_digestable()
    )


@dataclass(frozen=True, slots=True)
class Check:
    """An RRset to verify with the keys of its signer zone."""

    rrset: SignedRRset
    signer: dns.name.Name
    keys: Sequence[ZoneKey]

    def _attempts(self) -> list[tuple[RRSIG, dns.name.Name, list[ZoneKey]]]:
        attempts = []
        for rrsig in self.rrset.rrsigs:
            # validate_rrsig's refusals, in its order, before any key is tried.
            if rrsig.signer != self.signer or rrsig.expiration < rrsig.inception:
                continue
            owner = _signed_owner(self.rrset.name, rrsig.labels)
            if owner is not None:
                attempts.append((rrsig, owner, _candidates(self.keys, rrsig)))
        return attempts

    def cost(self) -> int:
        return sum(key.cost() for _, _, keys in self._attempts() for key in keys)

    def valid_intervals(self) -> list[Interval]:
        """When the RRset is valid: the union of the periods of its valid RRSIGs."""
        canonical = _CanonicalRRset(self.rrset)
        intervals = []
        for rrsig, owner, keys in self._attempts():
            data = _rrsig_header(rrsig) + canonical.form(owner, rrsig.original_ttl, rrsig.labels)
            if any(key.verifies(rrsig.signature, data) for key in keys):
                intervals.append((rrsig.inception, rrsig.expiration))
        if not intervals:
            rrset = self.rrset
            raise DnssecError(
                f"No valid RRSIG by {self.signer} covers the {rrset.what} records of {rrset.name}"
            )
        return union(intervals)


def check_cost(checks: Sequence[Check]) -> None:
    """Refuse a chain whose signature checks could cost more than the limit."""
    cost = sum(check.cost() for check in checks)
    if cost > MAX_SIGNATURE_COST:
        raise ChainLimitError(
            f"The chain's signature checks would cost {cost} RSA-2048 verifications"
            f" (at most {MAX_SIGNATURE_COST})"
        )
