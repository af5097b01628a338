"""What the pairing benchmark sends for each protocol, and what it must get back.

The benchmark itself (``benchmarks.pairing``) only knows pairs of sides: each side posts one
request from its Awala endpoint and must receive exactly one match message, with known
bytes, at that endpoint. The two protocols differ in how those bytes are made:

* legacy (CSV): the request is ``own id,contact id,base64 key`` and the match is the CSV
  the server builds, both written out by ``infra.agents.Agent``;
* VeraId: the request is a real ``contact-pairing.request`` SignatureBundle, signed with
  RSA-2048 keys over a mock DNSSEC chain by ``infra.agents`` (the tests' agents too), and
  the match is the *contact's* bundle, byte for byte: the server forwards it untouched.

VeraId material is expensive to make (an RSA-2048 key takes 50-100 ms to generate), so
everything is made before anything is measured, and the Awala endpoint keys come from a
small pool instead of one key per user; see ``VeraidPairing``.
"""

from __future__ import annotations

import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
)

import veraid
from infra.agents import Agent, VeraidAgent, VeraidOrg, endpoint_id, make_org, new_rsa_key
from letro.contact_pairing import LETRO_SERVICE_OID
from letro.content_types import CONTACT_PAIRING_REQUEST, PAIRING_MATCH_TMP, PAIRING_REQUEST_TMP

DOMAIN = "bench.letro.example"


@dataclass(frozen=True)
class Side:
    """One user of a pair, as the benchmark drives it."""

    # The Awala endpoint that sends this side's request and receives its match.
    endpoint_id: str
    # This side's pairing request to the other side, as posted to the ingress.
    request: bytes
    # The one message this side must receive once the pair is matched.
    match: bytes


@dataclass(frozen=True)
class Pair:
    first: Side
    second: Side

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.first, self.second


@dataclass
class VerificationFigures:
    """How fast this process verifies the benchmark's bundles, per second of CPU, one thread."""

    bundles: int
    warm_per_cpu_second: float
    cold_per_cpu_second: float

    def core_share(self, pairs_per_s: float, *, warm: bool = True) -> float:
        """The share of one core that verifying both requests of ``pairs_per_s`` pairs needs."""
        per_second = self.warm_per_cpu_second if warm else self.cold_per_cpu_second
        return round(2 * pairs_per_s / per_second, 3) if per_second else 0.0

    def ms_per_pair(self, *, warm: bool = True) -> float:
        per_second = self.warm_per_cpu_second if warm else self.cold_per_cpu_second
        return round(2000 / per_second, 2) if per_second else 0.0


class PairingProtocol(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    request_content_type: ClassVar[str]
    match_content_type: ClassVar[str]
    # The pair workflow's type, whose histories say how much Temporal work a pair took.
    workflow_type: ClassVar[str]
    # Targets, reported but not enforced (they depend on the machine): closed-loop matched
    # pairs/s over the floor's completed pairs/s, and the open loop's p99 where one is set.
    ratio_target: ClassVar[float]
    p99_target_ms: ClassVar[float | None]

    @property
    @abstractmethod
    def material(self) -> str:
        """What the requests are, for the report."""

    def service_env(self) -> dict[str, str]:
        """Settings for the local stack's services, for them to accept this protocol's requests.

        The worker and the ingress get the same environment; it is the ingress that verifies
        VeraId bundles.
        """
        return {}

    @abstractmethod
    def make_pairs(self, run_id: str, phase: str, count: int) -> list[Pair]:
        """``count`` pairs of users no other run or phase shares (the run id is random)."""

    def measure_verification(
        self, pairs: Sequence[Pair], seconds: float
    ) -> VerificationFigures | None:
        """Verification speed of these pairs' requests, where the protocol verifies any."""
        return None


def user_names(run_id: str, phase: str, count: int) -> list[tuple[str, str]]:
    return [(f"a{index}-{phase}-{run_id}", f"b{index}-{phase}-{run_id}") for index in range(count)]


# --------------------------------------------------------------------------------------------
# Legacy (CSV)


class LegacyPairing(PairingProtocol):
    name = "legacy"
    title = "Legacy pairing"
    request_content_type = PAIRING_REQUEST_TMP
    match_content_type = PAIRING_MATCH_TMP
    workflow_type = "LegacyContactPairing"
    ratio_target = 0.9
    p99_target_ms = 500.0

    @property
    def material(self) -> str:
        return "legacy CSV requests"

    def make_pairs(self, run_id: str, phase: str, count: int) -> list[Pair]:
        pairs = []
        for first_name, second_name in user_names(run_id, phase, count):
            first, second = Agent.named(first_name, DOMAIN), Agent.named(second_name, DOMAIN)
            pairs.append(Pair(_legacy_side(first, second), _legacy_side(second, first)))
        return pairs


def _legacy_side(agent: Agent, contact: Agent) -> Side:
    request = agent.legacy_pairing_request(contact)
    return Side(agent.endpoint_id, request, match=agent.expected_match_from(contact))


# --------------------------------------------------------------------------------------------
# VeraId


class VeraidPairing(PairingProtocol):
    """Real SignatureBundles of one mock organisation, whose trust anchor the worker is given.

    Every user has their own VeraId id and member certificate, and every request its own
    signature, so no two requests share bytes. The Awala endpoint keys, on the other hand,
    come from a pool of ``endpoint_keys`` RSA-2048 keys, because generating one per user
    would take minutes. Users sharing a key share an endpoint id, as several Letro accounts
    on one device do, and the server routes each match to the requester's endpoint id. The
    benchmark therefore identifies a match by its recipient *and* its bytes (the contact's
    unique bundle), never by the recipient alone; the two sides of a pair always have
    different keys, so a side's own request sent back to it is caught as a wrong match.
    """

    name = "veraid"
    title = "VeraId pairing"
    request_content_type = CONTACT_PAIRING_REQUEST
    match_content_type = CONTACT_PAIRING_REQUEST
    workflow_type = "VeraidContactPairing"
    ratio_target = 0.85
    p99_target_ms = 500.0

    def __init__(self, org: VeraidOrg, endpoint_keys: Sequence[rsa.RSAPrivateKey]) -> None:
        if len(endpoint_keys) < 2:
            raise ValueError("the two sides of a pair need two different endpoint keys")
        self._org = org
        self._keys = [(key, endpoint_id(key)) for key in endpoint_keys]

    @classmethod
    def create(cls, endpoint_keys: int) -> VeraidPairing:
        return cls(make_org(DOMAIN), generate_keys(endpoint_keys))

    @property
    def material(self) -> str:
        return (
            "VeraId SignatureBundles (RSA-2048 keys, mock DNSSEC chain),"
            f" users sharing {len(self._keys)} Awala endpoint keys"
        )

    def service_env(self) -> dict[str, str]:
        return {"VERAID_TRUST_ANCHORS": self._org.trust_anchor_setting}

    def make_pairs(self, run_id: str, phase: str, count: int) -> list[Pair]:
        # Consecutive keys for the two sides: different whenever the pool has two or more.
        keys = itertools.cycle(self._keys)
        pairs = []
        for first_name, second_name in user_names(run_id, phase, count):
            (first_key, first_id), (second_key, second_id) = next(keys), next(keys)
            first = VeraidAgent(self._org, first_name, first_key)
            second = VeraidAgent(self._org, second_name, second_key)
            first_request = first.pairing_request(second.veraid_id)
            second_request = second.pairing_request(first.veraid_id)
            pairs.append(
                Pair(
                    Side(first_id, first_request, match=second_request),
                    Side(second_id, second_request, match=first_request),
                )
            )
        return pairs

    def measure_verification(self, pairs: Sequence[Pair], seconds: float) -> VerificationFigures:
        """Verify the pairs' bundles as the worker does, with a warm cache and with none.

        Measured on this thread in CPU time (``time.thread_time``), so other work on the
        machine slows the measurement down without changing the figures.
        """
        bundles = [side.request for pair in pairs for side in pair.sides]
        anchors = (self._org.chain.trust_anchor,)
        # As the server verifies a request: valid at some point of the last 90 days.
        now = datetime.now(UTC)
        window = veraid.DatePeriod(now - veraid.MAX_TTL_OVERRIDE, now)

        def verifier(cache: veraid.VerificationCache | None) -> Callable[[bytes], object]:
            def verify(bundle: bytes) -> object:
                return veraid.verify_signature_bundle(
                    bundle, LETRO_SERVICE_OID, window, trust_anchors=anchors, cache=cache
                )

            return verify

        warm_cache = veraid.VerificationCache()
        verifier(warm_cache)(bundles[0])  # warm: the chain and organisation certificate known
        return VerificationFigures(
            bundles=len(bundles),
            warm_per_cpu_second=_per_cpu_second(verifier(warm_cache), bundles, seconds),
            cold_per_cpu_second=_per_cpu_second(verifier(None), bundles, seconds),
        )


def _per_cpu_second(
    operation: Callable[[bytes], object], items: Sequence[bytes], seconds: float
) -> float:
    """Run ``operation`` over ``items`` in turn for ``seconds``; the rate per CPU second."""
    count = 0
    began_cpu = time.thread_time()
    deadline = time.monotonic() + seconds
    for item in itertools.cycle(items):
        operation(item)
        count += 1
        if time.monotonic() >= deadline:
            break
    cpu = time.thread_time() - began_cpu
    return round(count / cpu, 1) if cpu > 0 else 0.0


def generate_keys(count: int) -> list[rsa.RSAPrivateKey]:
    """``count`` RSA-2048 keys, generated on every core (each takes 50-100 ms of CPU).

    Keys cannot be pickled, so the children return them as PKCS #8 DER. The pool forks
    before the benchmark starts any thread or event loop, and the children need nothing but
    ``cryptography``.
    """
    with ProcessPoolExecutor() as pool:
        ders = list(pool.map(_new_key_der, range(count)))
    keys = []
    for der in ders:
        # Skipping the consistency checks is safe: the keys were generated a moment ago.
        key = load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError(f"Expected an RSA key, got {type(key).__name__}")
        keys.append(key)
    return keys


def _new_key_der(_index: int) -> bytes:
    return new_rsa_key().private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())


PROTOCOL_NAMES = (LegacyPairing.name, VeraidPairing.name)


def create_protocol(name: str, *, endpoint_keys: int) -> PairingProtocol:
    """The protocol called ``name``; for VeraId, this makes its organisation and key pool."""
    if name == VeraidPairing.name:
        return VeraidPairing.create(endpoint_keys)
    if name == LegacyPairing.name:
        return LegacyPairing()
    raise ValueError(f"unknown pairing protocol {name!r}")
