"""Figures: what a phase measured, per module and as a whole, and the check of every reply.

Pure computations over the outcomes, the recorder and the snapshots taken around the
phase; nothing here sends or waits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.cpu import CpuSnapshot, ms_per_item, usage_percent
from benchmarks.exchanges.driver import ExchangeOutcome
from benchmarks.exchanges.workload import Exchange, Module
from benchmarks.pairing.figures import LatencyMs, latency_summary, rate
from benchmarks.replies import ACCEPTED, Correctness, ReplyRecorder, check_replies


@dataclass
class ModuleFigures:
    module: str
    title: str
    rate_unit: str
    exchanges: int  # started in the phase
    requests: int
    requests_accepted: int
    # Exchanges whose every reply arrived, and those that got each exactly once.
    completed: int
    exactly_once: int
    per_s: float
    latency_ms: LatencyMs | None
    # The module's counters (such as Authority calls) per completed exchange.
    counted_per_exchange: dict[str, float]
    # What the module found wrong in replies it could only check after the run.
    wrong_content: dict[str, int]
    correctness: Correctness

    @property
    def ok(self) -> bool:
        return self.correctness.ok and not self.wrong_content


@dataclass
class PhaseFigures:
    # From the first message posted to the last reply received.
    seconds: float
    # Prepared exchanges left unsent when the phase stopped (a duration-bounded phase).
    left_unsent: int
    modules: list[ModuleFigures]
    # Messages no one awaited, by content type: a failure, whichever module sent them.
    unexpected: dict[str, int]
    transport_retries: int
    cpu_percent: dict[str, float]
    cpu_ms_per_exchange: dict[str, float]
    cpu_ms_per_message: dict[str, float]

    @property
    def ok(self) -> bool:
        return not self.unexpected and all(module.ok for module in self.modules)


@dataclass(frozen=True)
class PhaseRecord:
    """Everything a phase leaves behind for its figures to be computed from."""

    exchanges: Sequence[Exchange]
    outcomes: Sequence[ExchangeOutcome]
    # Left unsent is a failure when the phase had to send everything.
    must_send_all: bool
    cpu: tuple[CpuSnapshot, CpuSnapshot]
    counters: tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]
    transport_retries: int


def phase_figures(
    record: PhaseRecord, modules: Sequence[Module], recorder: ReplyRecorder
) -> PhaseFigures:
    outcomes = record.outcomes
    start = min((outcome.first_sent for outcome in outcomes), default=0.0)
    completed = [at for outcome in outcomes if (at := outcome.completed_at()) is not None]
    seconds = max(completed, default=start) - start
    accepted = sum(outcome.statuses.count(ACCEPTED) for outcome in outcomes)
    unsent = len(record.exchanges) - len(outcomes)
    per_module = [_module_figures(module, record, recorder, seconds) for module in modules]
    return PhaseFigures(
        seconds=round(seconds, 2),
        left_unsent=unsent,
        # A module the phase had none of is left out, unless it failed (nothing sent).
        modules=[figures for figures in per_module if figures.exchanges or not figures.ok],
        unexpected=recorder.take_unexpected(),
        transport_retries=record.transport_retries,
        cpu_percent={name: round(value) for name, value in usage_percent(*record.cpu).items()},
        cpu_ms_per_exchange=ms_per_item(*record.cpu, len(completed)),
        cpu_ms_per_message=ms_per_item(*record.cpu, accepted),
    )


def _module_figures(
    module: Module, record: PhaseRecord, recorder: ReplyRecorder, seconds: float
) -> ModuleFigures:
    outcomes = [outcome for outcome in record.outcomes if outcome.exchange.module == module.name]
    statuses = [status for outcome in outcomes for status in outcome.statuses]
    replies = [reply for outcome in outcomes for reply in outcome.exchange.replies]
    correctness = check_replies(statuses, 0, replies, recorder)
    if record.must_send_all:
        correctness.not_sent = sum(
            exchange.module == module.name for exchange in record.exchanges
        ) - len(outcomes)
    completed = [outcome for outcome in outcomes if outcome.completed_at() is not None]
    return ModuleFigures(
        module=module.name,
        title=module.title,
        rate_unit=module.rate_unit,
        exchanges=len(outcomes),
        requests=sum(len(outcome.exchange.messages) for outcome in outcomes),
        requests_accepted=statuses.count(ACCEPTED),
        completed=len(completed),
        exactly_once=sum(_exactly_once(outcome, recorder) for outcome in outcomes),
        per_s=rate(len(completed), seconds),
        latency_ms=latency_summary(
            1000 * (at - outcome.last_sent)
            for outcome in completed
            if (at := outcome.completed_at()) is not None
        ),
        counted_per_exchange=_per_exchange(
            record.counters[0].get(module.name, {}),
            record.counters[1].get(module.name, {}),
            len(completed),
        ),
        wrong_content=_wrong_content(module, outcomes, recorder),
        correctness=correctness,
    )


def _exactly_once(outcome: ExchangeOutcome, recorder: ReplyRecorder) -> bool:
    return all(len(recorder.delivered(reply)) == 1 for reply in outcome.exchange.replies)


def _per_exchange(
    before: Mapping[str, int], after: Mapping[str, int], exchanges: int
) -> dict[str, float]:
    return {
        name: round((value - before.get(name, 0)) / max(exchanges, 1), 2)
        for name, value in after.items()
    }


def _wrong_content(
    module: Module, outcomes: Sequence[ExchangeOutcome], recorder: ReplyRecorder
) -> dict[str, int]:
    """The module's verdict on each reply it awaited with any bytes, counted by problem."""
    problems = Counter(
        problem
        for outcome in outcomes
        for reply in outcome.exchange.replies
        if reply.data is None
        for event in recorder.delivered(reply)
        if (problem := module.check_reply(outcome.exchange, event)) is not None
    )
    return dict(problems)
