"""The workload: every request of a run, made before anything is measured.

Each phase gets its own pairs, and each pair its own users (``benchmarks.pairing_protocols``
makes them), so no phase can see another's messages.
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass
from enum import StrEnum

from benchmarks.pairing_protocols import Pair, PairingProtocol, create_protocol


class Arrival(StrEnum):
    """How a phase's pairs reach the ingress."""

    CLOSED = "closed loop"
    SIMULTANEOUS = "simultaneous arrival"
    OPEN = "open loop"


@dataclass(frozen=True)
class Workload:
    protocol: PairingProtocol
    run_id: str
    warmup: list[Pair]
    closed: list[Pair]
    simultaneous: list[Pair]
    open: list[Pair]

    @property
    def requests(self) -> int:
        phases = (self.warmup, self.closed, self.simultaneous, self.open)
        return 2 * sum(len(pairs) for pairs in phases)


def prepare(args: argparse.Namespace) -> Workload:
    """Every request of the run; with VeraId, also the organisation and the endpoint keys."""
    protocol = create_protocol(args.protocol, endpoint_keys=args.endpoint_keys)
    run_id = uuid.uuid4().hex[:8]

    def pairs(phase: str, count: int) -> list[Pair]:
        return protocol.make_pairs(run_id, phase, count)

    return Workload(
        protocol=protocol,
        run_id=run_id,
        warmup=pairs("warmup", args.warmup),
        closed=pairs("closed", args.pairs),
        simultaneous=pairs("simultaneous", args.simultaneous_pairs),
        open=pairs("open", args.open_pairs),
    )
