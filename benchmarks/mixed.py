"""Every module of the server at once, in realistic proportions, through the real stack.

    python -m benchmarks.mixed [--seconds 60] [--concurrency 32] [--mix ...] [--json]

``--mix`` gives each module's share of the messages, by default per 100 messages: 50 VeraId
pairing requests (25 pairs), 10 legacy pairing requests (5 pairs), 20 pairing
authorisations, 10 account requests and 10 connection-params requests
(``veraid=50,legacy=10,authorisations=20,accounts=10,connection-params=10``; a module
given 0 is left out, with its servers). The requests are what each module's own benchmark
sends: real VeraId SignatureBundles (``benchmarks.pairing_protocols``), legacy CSV,
``PrivateEndpointConnParams`` with a real PDA from granter to grantee (forwarded as is),
signed account requests against the development Authority (``benchmarks.accounts``) and
connection-params requests against local DNS and HTTPS servers
(``benchmarks.connection_params``), all made before the stack starts: enough for
``--seconds`` at ``--prepare-rate`` messages/s, shuffled together.

The measured phase is the closed loop of ``benchmarks.exchanges`` for ``--seconds``: each
lane posts an exchange's messages (a pair's two requests one after the other) and waits
for its replies before taking the next. The headline is the VeraId pairing rate under the
mix, in matched pairs/s, printed first in the last line with each module's rate and p99.
CPU is given per message, as the modules' exchanges differ. Every request must be accepted
and every reply arrive exactly once; the exit status is 1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric import rsa

from benchmarks.accounts import AccountCreation
from benchmarks.connection_params import ConnectionParamsRetrieval
from benchmarks.exchanges.command_line import add_common_options, run_benchmark
from benchmarks.exchanges.workload import Exchange, Message, Module, exchanges_for
from benchmarks.pairing.command_line import positive_int
from benchmarks.pairing_protocols import (
    LegacyPairing,
    Pair,
    PairingProtocol,
    VeraidPairing,
    generate_keys,
)
from benchmarks.replies import ExpectedReply
from infra.agents import connection_params, endpoint_id
from letro.content_types import PAIRING_AUTH

DEFAULT_MIX = "veraid=50,legacy=10,authorisations=20,accounts=10,connection-params=10"


class _Pairs(Module):
    """A pairing protocol's pairs, each an exchange of two requests and two matches."""

    rate_unit = "matched pairs/s"
    messages_per_exchange = 2
    protocol: PairingProtocol

    @property
    def material(self) -> str:
        return self.protocol.material

    def make(self, run_id: str, phase: str, count: int) -> list[Exchange]:
        return [self._exchange(pair) for pair in self.protocol.make_pairs(run_id, phase, count)]

    def _exchange(self, pair: Pair) -> Exchange:
        protocol = self.protocol
        return Exchange(
            self.name,
            tuple(
                Message(side.endpoint_id, protocol.request_content_type, side.request)
                for side in pair.sides
            ),
            tuple(
                ExpectedReply(side.endpoint_id, protocol.match_content_type, side.match)
                for side in pair.sides
            ),
        )

    def service_env(self) -> dict[str, str]:
        return self.protocol.service_env()


class VeraidPairs(_Pairs):
    name = VeraidPairing.name
    title = VeraidPairing.title

    def __init__(self, endpoint_keys: int) -> None:
        self.protocol = VeraidPairing.create(endpoint_keys)


class LegacyPairs(_Pairs):
    name = LegacyPairing.name
    title = LegacyPairing.title

    def __init__(self) -> None:
        self.protocol = LegacyPairing()


class Authorisations(Module):
    """Pairing authorisations: a granter's connection parameters, forwarded to the grantee."""

    name = "authorisations"
    title = "Pairing authorisations"
    rate_unit = "authorisations/s"

    def __init__(self, keys: Sequence[rsa.RSAPrivateKey]) -> None:
        if len(keys) < 2:
            raise ValueError("a granter and a grantee need two different endpoint keys")
        self._keys = [(key, endpoint_id(key)) for key in keys]

    @property
    def material(self) -> str:
        return (
            "PrivateEndpointConnParams with a real PDA (RSA-PSS), endpoints sharing"
            f" {len(self._keys)} RSA-2048 keys"
        )

    def make(self, run_id: str, phase: str, count: int) -> list[Exchange]:
        return [self._exchange(index) for index in range(count)]

    def _exchange(self, index: int) -> Exchange:
        (granter, granter_id), (grantee, grantee_id) = (
            self._keys[index % len(self._keys)],
            self._keys[(index + 1) % len(self._keys)],
        )
        # Each PDA has its own serial number, so no two authorisations share bytes.
        params = connection_params(granter, grantee)
        return Exchange(
            self.name,
            (Message(granter_id, PAIRING_AUTH, params),),
            (ExpectedReply(grantee_id, PAIRING_AUTH, params),),
        )


# In the order the report and the summary give them: the headline first.
MODULES: dict[str, Callable[[argparse.Namespace], Module]] = {
    VeraidPairs.name: lambda args: VeraidPairs(args.endpoint_keys),
    LegacyPairs.name: lambda _: LegacyPairs(),
    Authorisations.name: lambda args: Authorisations(generate_keys(args.endpoint_keys)),
    AccountCreation.name: lambda args: AccountCreation.create(args.account_keys),
    ConnectionParamsRetrieval.name: lambda _: ConnectionParamsRetrieval(),
}


def parse_mix(text: str) -> dict[str, float]:
    """``name=share,...`` into shares of the messages; unknown names and bad shares refused."""
    mix: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, share = item.partition("=")
        if name not in MODULES or not equals:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not module=share, with a module among {', '.join(MODULES)}"
            )
        try:
            value = float(share)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{share!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"{share!r} is not a share (0 or more)")
        mix[name] = value
    if not any(mix.values()):
        raise argparse.ArgumentTypeError("the mix gives no module any messages")
    return mix


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mixed",
        description="Measure every module at once, in realistic proportions.",
    )
    add_common_options(parser, concurrency=32)
    parser.set_defaults(seconds=60.0)
    add = parser.add_argument
    add("--mix", type=parse_mix, default=parse_mix(DEFAULT_MIX), help=f"default {DEFAULT_MIX}")
    add(
        "--prepare-rate",
        type=float,
        default=50.0,
        help="messages/s to prepare for --seconds (more than the stack takes here)",
    )
    add("--endpoint-keys", type=positive_int, default=32, help="RSA-2048 endpoint keys per pool")
    add("--account-keys", type=positive_int, default=16, help="RSA-2048 account keys")
    args = parser.parse_args(argv)
    if args.endpoint_keys < 2:
        parser.error("--endpoint-keys must be at least 2")
    if not args.seconds or args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def make_modules(args: argparse.Namespace) -> list[Module]:
    return [make(args) for name, make in MODULES.items() if args.mix.get(name, 0.0) > 0]


def measured_counts(args: argparse.Namespace, modules: Sequence[Module]) -> Mapping[str, int]:
    messages = math.ceil(args.seconds * args.prepare_rate)
    return exchanges_for(messages, args.mix, modules)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_benchmark(
        args,
        benchmark="mixed",
        title="mixed",
        make_modules=make_modules,
        counts=lambda modules: measured_counts(args, modules),
    )


if __name__ == "__main__":
    sys.exit(main())
