"""The workload: what each of the server's modules sends and must get back, made beforehand.

An ``Exchange`` is what one user does with one module: post one or more messages (a pair
posts two), then receive the replies the module owes them. A ``Module`` makes its
exchanges, starts whatever its requests need besides the stack (the development
Authority, the DNS and HTTPS servers), and says how the stack must be configured for it.
"""

from __future__ import annotations

import math
import random
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from benchmarks.replies import ExpectedReply
from infra.sink import ReceivedEvent


@dataclass(frozen=True)
class Message:
    """One service message posted to the ingress, as the Awala Internet Endpoint posts it."""

    sender_id: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Exchange:
    module: str
    # Posted in this order, each once the previous one was answered.
    messages: tuple[Message, ...]
    # Each must reach the sink exactly once.
    replies: tuple[ExpectedReply, ...]


class Module(ABC):
    """One module of the server, as a benchmark drives it."""

    name: ClassVar[str]  # as in ``--mix`` and the JSON report
    title: ClassVar[str]  # for the text report
    rate_unit: ClassVar[str]  # what its rate counts, e.g. "accounts/s"
    messages_per_exchange: ClassVar[int] = 1

    @property
    @abstractmethod
    def material(self) -> str:
        """What its requests are, for the report."""

    @abstractmethod
    def make(self, run_id: str, phase: str, count: int) -> list[Exchange]:
        """``count`` exchanges no other run or phase shares (the run id is random)."""

    async def start(self, exits: AsyncExitStack, work_dir: Path) -> None:  # noqa: B027
        """Start what its requests need besides the stack, stopped with ``exits``."""

    def service_env(self) -> dict[str, str]:
        """Settings the stack's worker and ingress need for this module (after ``start``)."""
        return {}

    def components(self) -> dict[str, list[int]]:
        """Processes of its own to account CPU for (after ``start``)."""
        return {}

    async def counters(self) -> dict[str, int]:
        """Running totals of the work its requests cause elsewhere, such as Authority calls."""
        return {}

    def check_reply(self, exchange: Exchange, reply: ReceivedEvent) -> str | None:
        """What is wrong with a reply awaited with any bytes, if anything (after the run)."""
        return None


@dataclass(frozen=True)
class Workload:
    run_id: str
    warmup: list[Exchange]
    measured: list[Exchange]

    @property
    def messages(self) -> int:
        return sum(len(exchange.messages) for exchange in (*self.warmup, *self.measured))


def prepare(
    modules: Sequence[Module], warmup: int, measured: Mapping[str, int], seed: int
) -> Workload:
    """``warmup`` exchanges of each module, then ``measured[name]`` of each, interleaved.

    The measured exchanges are shuffled (with ``seed``), so that any stretch of the run
    sends the modules in about the proportions asked for.
    """
    run_id = uuid.uuid4().hex[:8]
    warm = [exchange for module in modules for exchange in module.make(run_id, "w", warmup)]
    shuffled = [
        exchange
        for module in modules
        for exchange in module.make(run_id, "m", measured.get(module.name, 0))
    ]
    random.Random(seed).shuffle(shuffled)
    return Workload(run_id, warm, shuffled)


def exchanges_for(
    messages: int, weights: Mapping[str, float], modules: Sequence[Module]
) -> dict[str, int]:
    """How many exchanges of each module make about ``messages`` messages in these proportions.

    ``weights`` are shares of the messages (a pair's two requests count two), so a module
    with two messages per exchange gets half as many exchanges as its share.
    """
    total = sum(weights.get(module.name, 0.0) for module in modules)
    if total <= 0:
        raise ValueError("the mix gives no module any messages")
    return {
        module.name: math.ceil(
            messages * weights.get(module.name, 0.0) / total / module.messages_per_exchange
        )
        for module in modules
        if weights.get(module.name, 0.0) > 0
    }
