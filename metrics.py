"""Prometheus metrics of both processes: the Temporal SDK's own and ours, on one endpoint.

Each process runs the SDK's runtime with a Prometheus exporter (``METRICS_PORT``), which
serves the SDK's metrics (workflow and activity task latencies, failures, poll counts,
sticky cache...) at ``/metrics``. Our own instruments are made from the same runtime's
meter, or from the meter Temporal gives workflow and activity code, so they come out of the
same endpoint. A workflow's meter drops what replays emit: each event is counted once.

Every instrument is declared here, so the names an alert rule refers to are in one place.
Label values are drawn from small fixed sets (content types, outcomes, reasons), never from
ids, so no label can grow without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import MetricCounter, MetricHistogramTimedelta, MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from letro.content_types import ALL_CONTENT_TYPES

_OTHER = "other"


def prometheus_runtime(port: int, host: str = "0.0.0.0") -> Runtime:
    """A Temporal runtime whose metrics are served for Prometheus on ``host:port``."""
    exporter = PrometheusConfig(
        bind_address=f"{host}:{port}",
        counters_total_suffix=True,
        durations_as_seconds=True,
        # The SDK's default buckets start at 50 ms; our checks take about a millisecond.
        histogram_bucket_overrides={timer.name: _FAST_BUCKETS for timer in _TIMERS},
    )
    return Runtime(telemetry=TelemetryConfig(metrics=exporter))


def content_type_label(content_type: str) -> str:
    """The content type itself if it is one of Letro's, else "other" (bounded cardinality)."""
    return content_type if content_type in ALL_CONTENT_TYPES else _OTHER


@dataclass(frozen=True)
class Counter:
    name: str
    description: str

    def on(self, meter: MetricMeter) -> MetricCounter:
        return meter.create_counter(self.name, self.description)


@dataclass(frozen=True)
class Timer:
    name: str
    description: str

    def on(self, meter: MetricMeter) -> MetricHistogramTimedelta:
        return meter.create_histogram_timedelta(self.name, self.description, "duration")


# --- The ingress --------------------------------------------------------------------------

INGRESS_REQUESTS = Counter(
    "letro_ingress_requests", "POSTed messages, by HTTP status and content type"
)
INGRESS_REFUSALS = Counter(
    "letro_ingress_refusals",
    "Messages refused before Temporal (logged and dropped, or a 4xx), by content type and reason",
)
INGRESS_CHECK_TIME = Timer(
    "letro_ingress_check_seconds",
    "Time to parse and verify one message (VeraId bundles included), by content type",
)
INGRESS_HANDOFF_TIME = Timer(
    "letro_ingress_handoff_seconds",
    "Time for Temporal to accept a message (start or signal-with-start)",
)
_TIMERS = (INGRESS_CHECK_TIME, INGRESS_HANDOFF_TIME)
_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class IngressMetrics:
    requests: MetricCounter
    refusals: MetricCounter
    check_time: MetricHistogramTimedelta
    handoff_time: MetricHistogramTimedelta

    @classmethod
    def on(cls, meter: MetricMeter) -> IngressMetrics:
        return cls(
            INGRESS_REQUESTS.on(meter),
            INGRESS_REFUSALS.on(meter),
            INGRESS_CHECK_TIME.on(meter),
            INGRESS_HANDOFF_TIME.on(meter),
        )

    def request(self, status: int, content_type: str) -> None:
        self.requests.add(
            1, {"status": str(status), "content_type": content_type_label(content_type)}
        )

    def refusal(self, content_type: str, reason: str) -> None:
        self.refusals.add(1, {"content_type": content_type_label(content_type), "reason": reason})

    def checked(self, content_type: str, elapsed: timedelta) -> None:
        self.check_time.record(elapsed, {"content_type": content_type_label(content_type)})


def count(meter: MetricMeter, counter: Counter, value: int = 1, **labels: str) -> None:
    """Add ``value`` to ``counter`` with ``labels``; in workflow code, pass its meter."""
    if value:
        counter.on(meter).add(value, labels)


# --- The worker: workflows and activities ---------------------------------------------------

PAIRING_REQUESTS = Counter(
    "letro_pairing_requests", "Pairing requests a pair workflow took in, by protocol"
)
PAIRING_REDELIVERIES = Counter(
    "letro_pairing_redeliveries", "Redelivered pairing requests ignored, by protocol"
)
PAIRING_MATCHES = Counter("letro_pairing_matches", "Pairs matched, by protocol")
PAIRING_EXPIRATIONS = Counter(
    "letro_pairing_expirations", "Pairing requests expired unmatched, by protocol"
)
PAIRING_FAILURE_REPLIES = Counter(
    "letro_pairing_failure_replies", "ContactPairingFailure replies sent, by reason"
)
ACCOUNT_OUTCOMES = Counter(
    "letro_account_outcomes", "Account requests handled, by outcome (created or not_created)"
)
AUTHORITY_ERRORS = Counter(
    "letro_authority_errors",
    "Failed VeraId Authority calls, by operation and error (AuthorityUnauthorised: 401/403)",
)
ACCOUNT_ORPHAN_MEMBERS = Counter(
    "letro_account_orphan_members",
    "Names met with 409 after a create-member attempt whose answer was lost: possibly a member"
    " we created and cannot reach (logged with its name as 'Possible orphan member')",
)
CONNECTION_PARAMS_OUTCOMES = Counter(
    "letro_connection_params_outcomes",
    "Connection params requests answered, by reply and whether retries ran out",
)
EGRESS_ATTEMPTS = Counter(
    "letro_egress_attempts", "Attempts to send a service message, by outcome and content type"
)
EGRESS_UNDELIVERED = Counter(
    "letro_egress_undelivered",
    "Service messages kept undelivered once their retry window closed, by content type",
)
