"""Figures: what a phase measured, its percentiles, and the check of every match.

Pure computations over the outcomes and the recorder; nothing here sends or waits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from benchmarks.cpu import CpuSnapshot, ms_per_item, usage_percent
from benchmarks.pairing.load_generator import PairOutcome
from benchmarks.pairing.match_recorder import MatchRecorder
from benchmarks.pairing.temporal_work import TemporalWork
from benchmarks.pairing.workload import Arrival
from benchmarks.pairing_protocols import Pair
from benchmarks.replies import ACCEPTED, Correctness, check_replies


@dataclass
class LatencyMs:
    p50: float
    p95: float
    p99: float
    max: float
    # Latencies measured; the p99 rests on the slowest hundredth of them.
    count: int = 0


@dataclass
class PairingFigures:
    phase: str
    arrival: Arrival
    pairs: int
    concurrency: int | None
    # Closed loop: at most this many pairs accepted and not yet matched (None: unbounded).
    max_outstanding: int | None
    offered_pairs_per_s: float | None
    requests_accepted: int
    accepted_per_s: float
    pairs_matched: int
    # Pairs of which each side got its match exactly once: two messages, both right.
    pairs_with_two_matches: int
    matched_pairs_per_s: float
    seconds: float
    latency_ms: LatencyMs | None
    arrival_lag_max_ms: float | None
    transport_retries: int
    correctness: Correctness
    cpu_percent: dict[str, float]
    cpu_ms_per_pair: dict[str, float]
    temporal_work: TemporalWork | None = None

    @property
    def accepted_to_matched(self) -> float | None:
        """How many times faster pairs were accepted than matched (above 1: a backlog grew)."""
        if not self.matched_pairs_per_s:
            return None
        return round(self.accepted_per_s / 2 / self.matched_pairs_per_s, 2)


@dataclass
class FloorFigures:
    workflow: str  # which floor (benchmarks.floor)
    pairs: int
    concurrency: int
    signal_with_starts_accepted: int
    accepted_per_s: float
    pairs_completed: int
    completed_pairs_per_s: float
    seconds: float
    failures: dict[str, int]
    cpu_percent: dict[str, float]
    cpu_ms_per_pair: dict[str, float]
    # The floor with I/O: the replies the sink received (two per completed pair).
    replies_received: int | None = None


def percentile(sorted_values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    rank = max(math.ceil(percent / 100 * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def latency_ms(outcomes: Iterable[PairOutcome]) -> LatencyMs | None:
    return latency_summary(
        1000 * (matched - outcome.second_sent)
        for outcome in outcomes
        if (matched := outcome.matched_at()) is not None
    )


def latency_summary(values_ms: Iterable[float]) -> LatencyMs | None:
    """The percentiles of these latencies (milliseconds); None if there are none."""
    values = sorted(values_ms)
    if not values:
        return None
    p50, p95, p99 = (round(percentile(values, p), 1) for p in (50, 95, 99))
    return LatencyMs(p50=p50, p95=p95, p99=p99, max=round(values[-1], 1), count=len(values))


def check(
    pairs: Sequence[Pair], outcomes: Sequence[PairOutcome], recorder: MatchRecorder
) -> Correctness:
    """Every request accepted, exactly one correct match per side, and no other message.

    Messages nobody awaited are charged to the phase checked next after they arrived:
    phases run one after the other, each waiting ``--grace`` for late ones.
    """
    result = check_replies(
        (status for outcome in outcomes for status in outcome.statuses),
        len(pairs) - len(outcomes),
        (recorder.reply_for(side) for outcome in outcomes for side in outcome.pair.sides),
        recorder,
    )
    result.unexpected = recorder.take_unexpected()
    return result


def pairs_with_two_matches(outcomes: Iterable[PairOutcome], recorder: MatchRecorder) -> int:
    return sum(
        all(len(recorder.delivered_to(side)) == 1 for side in outcome.pair.sides)
        for outcome in outcomes
    )


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def pairing_figures(
    phase: str,
    arrival: Arrival,
    pairs: Sequence[Pair],
    outcomes: Sequence[PairOutcome],
    recorder: MatchRecorder,
    cpu: tuple[CpuSnapshot, CpuSnapshot],
    *,
    concurrency: int | None,
    max_outstanding: int | None,
    offered: float | None,
    lag: float | None,
    retries: int,
) -> PairingFigures:
    start = min((outcome.first_sent for outcome in outcomes), default=0.0)
    accepted = sum(outcome.statuses.count(ACCEPTED) for outcome in outcomes)
    # Acceptance is measured up to the last second request's start: close enough for a
    # rate over thousands of requests, and it needs no extra timestamp per request.
    last_sent = max((outcome.second_sent for outcome in outcomes), default=start)
    matched_at = [m for outcome in outcomes if (m := outcome.matched_at()) is not None]
    seconds = max(matched_at, default=start) - start
    return PairingFigures(
        phase=phase,
        arrival=arrival,
        pairs=len(pairs),
        concurrency=concurrency,
        max_outstanding=max_outstanding,
        offered_pairs_per_s=None if offered is None else round(offered, 1),
        requests_accepted=accepted,
        accepted_per_s=rate(accepted, last_sent - start),
        pairs_matched=len(matched_at),
        pairs_with_two_matches=pairs_with_two_matches(outcomes, recorder),
        matched_pairs_per_s=rate(len(matched_at), seconds),
        seconds=round(seconds, 2),
        latency_ms=latency_ms(outcomes),
        arrival_lag_max_ms=None if lag is None else round(1000 * lag, 1),
        transport_retries=retries,
        correctness=check(pairs, outcomes, recorder),
        cpu_percent={name: round(value) for name, value in usage_percent(*cpu).items()},
        cpu_ms_per_pair=ms_per_item(*cpu, len(matched_at)),
    )
