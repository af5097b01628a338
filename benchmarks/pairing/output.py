"""The report, printed as text for a person or as JSON for a script (``--json``)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

from benchmarks.floor import IO_FLOOR_WORKFLOW
from benchmarks.pairing.figures import FloorFigures, PairingFigures
from benchmarks.pairing.run import Report
from benchmarks.pairing.temporal_work import TemporalWork
from benchmarks.pairing.workload import Arrival
from benchmarks.pairing_protocols import VerificationFigures

# Accepting this much faster than matching leaves a backlog worth saying so.
BACKLOG_RATIO = 1.1
# An open loop offered this share of the closed loop's matched rate or more runs at or past
# saturation: its queue grows for as long as it runs, whatever the service time.
SATURATION_SHARE = 0.9


def print_report(report: Report, title: str) -> None:
    before = " ".join(f"{v:.2f}" for v in report.load_average_before)
    after = " ".join(f"{v:.2f}" for v in report.load_average_after)
    print(f"Letro {title.lower()} benchmark, {report.started}, {report.cpus} CPUs")
    print(f"Stack: {report.stack}")
    print(f"Requests: {report.material}; made in {report.preparation_seconds} s beforehand")
    print(f"Load average (1/5/15 min): before {before}; after {after}")
    if report.floor:
        _print_floor(report.floor)
    if report.io_floor:
        _print_floor(report.io_floor)
    if report.closed_loop:
        _print_pairing(report.closed_loop, title)
        _print_backlog(report.closed_loop)
        ratio = report.ratio_to_floor
        if ratio is not None:
            verdict = "met" if ratio >= report.ratio_target else "MISSED"
            print(
                f"  ratio to floor        {ratio:.2f} matched / completed floor pairs"
                f"  (target >= {report.ratio_target}: {verdict})"
            )
        if report.ratio_to_io_floor is not None:
            print(
                f"  ratio to I/O floor    {report.ratio_to_io_floor:.2f} matched / completed"
                " floor-with-I/O pairs"
            )
        if report.acceptance_ratio is not None:
            print(f"  acceptance ratio      {report.acceptance_ratio:.2f} of the floor's")
        _print_worker_ratios(report)
    if report.simultaneous:
        _print_pairing(report.simultaneous, title)
    if report.open_loop:
        _print_pairing(report.open_loop, title)
        latency = report.open_loop.latency_ms
        if latency is not None and report.p99_target_ms is not None:
            verdict = "met" if latency.p99 < report.p99_target_ms else "MISSED"
            print(f"  p99 target            < {report.p99_target_ms:.0f} ms: {verdict}")
        _print_load(report.open_loop, report.closed_loop)
    if report.verification:
        _print_verification(report.verification, report.closed_loop)
    print(f"Correctness: {'OK' if report.ok else 'FAILED'}")


def _print_floor(floor: FloorFigures) -> None:
    if floor.workflow == IO_FLOOR_WORKFLOW:
        print(
            "\nFloor with the protocol's I/O: 2 signal-with-starts per pair; local activities"
            " for one MongoDB upsert when a request waits alone, and a deletion and 2 HTTP"
            f" replies at the match; concurrency {floor.concurrency}"
        )
    else:
        print(
            "\nFloor: empty workflow, 2 signal-with-starts per pair,"
            f" concurrency {floor.concurrency}"
        )
    requests = 2 * floor.pairs
    print(
        f"  signal-with-starts    {floor.signal_with_starts_accepted}/{requests} accepted,"
        f" {floor.accepted_per_s}/s ({floor.accepted_per_s / 2:.1f} pairs/s)"
    )
    print(
        f"  completed pairs       {floor.pairs_completed}/{floor.pairs} in {floor.seconds} s:"
        f" {floor.completed_pairs_per_s} pairs/s"
    )
    if floor.replies_received is not None:
        print(f"  replies received      {floor.replies_received} (2 per completed pair)")
    if floor.failures:
        print(f"  FAILURES              {floor.failures}")
    print(f"  CPU % of one core     {cpu_text(floor.cpu_percent)}")
    print(f"  CPU ms per pair       {cpu_text(floor.cpu_ms_per_pair, digits=1)}")


def _print_worker_ratios(report: Report) -> None:
    """The worker's CPU per pair against each floor worker's, in the same run."""
    bare, io = report.worker_to_floor_worker, report.worker_to_io_floor_worker
    if bare is None:
        return
    verdict = "met" if bare <= report.worker_cpu_target else "MISSED"
    line = (
        f"  worker CPU per pair   {bare:.1f}x the floor worker's"
        f" (target <= {report.worker_cpu_target}x: {verdict})"
    )
    if io is not None:
        line += f"; {io:.1f}x the floor-with-I/O worker's"
    print(line)


def _print_pairing(figures: PairingFigures, title: str) -> None:
    if figures.arrival is Arrival.OPEN:
        print(
            f"\n{title}, open loop, Poisson arrivals at {figures.offered_pairs_per_s}"
            f" pairs/s (latest arrival {figures.arrival_lag_max_ms} ms behind schedule)"
        )
    elif figures.arrival is Arrival.SIMULTANEOUS:
        print(
            f"\n{title}, simultaneous arrival (a pair's two requests at once),"
            f" concurrency {figures.concurrency}"
        )
    else:
        print(f"\n{title}, closed loop, concurrency {figures.concurrency}")
    requests = 2 * figures.pairs
    print(
        f"  accepted requests     {figures.requests_accepted}/{requests} (204),"
        f" {figures.accepted_per_s}/s ({figures.accepted_per_s / 2:.1f} pairs/s)"
    )
    print(
        f"  matched pairs         {figures.pairs_matched}/{figures.pairs} in {figures.seconds} s:"
        f" {figures.matched_pairs_per_s} pairs/s"
    )
    print(f"  exactly two matches   {figures.pairs_with_two_matches}/{figures.pairs} pairs")
    if figures.latency_ms:
        lat = figures.latency_ms
        sent = "both requests" if figures.arrival is Arrival.SIMULTANEOUS else "2nd request"
        print(
            f"  latency ({sent} to both matches)  p50 {lat.p50} ms  p95 {lat.p95} ms"
            f"  p99 {lat.p99} ms  max {lat.max} ms  ({lat.count} pairs; the p99 rests on the"
            f" slowest {lat.count - math.ceil(0.99 * lat.count) + 1})"
        )
    if figures.transport_retries:
        print(f"  transport retries     {figures.transport_retries} (same parcel id, not failures)")
    if not figures.correctness.ok:
        print(f"  FAILURES              {figures.correctness}")
    print(f"  CPU % of one core     {cpu_text(figures.cpu_percent)}")
    print(f"  CPU ms per pair       {cpu_text(figures.cpu_ms_per_pair, digits=1)}")
    _print_temporal_work(figures.temporal_work)


def _print_temporal_work(work: TemporalWork | None) -> None:
    if work is None:
        return
    print(
        f"  Temporal per pair     {work.history_events_per_pair} history events,"
        f" {work.workflow_tasks_per_pair} workflow tasks, {work.runs_per_pair} runs"
        f" (histories of {work.pairs_sampled} pairs, before their linger ends);"
        f" matched in the task that took the 2nd request: {work.matched_in_one_task}"
        f"/{work.pairs_sampled}"
    )


def _print_load(open_loop: PairingFigures, closed: PairingFigures | None) -> None:
    """How close the open loop's offered rate came to what the closed loop sustained."""
    offered = open_loop.offered_pairs_per_s
    if closed is None or not offered or not closed.matched_pairs_per_s:
        return
    share = offered / closed.matched_pairs_per_s
    verdict = (
        ": at or past saturation, so its latency is a queue that grows while the loop runs"
        if share >= SATURATION_SHARE
        else ""
    )
    print(
        f"  load                  offered {offered} pairs/s, {share:.0%} of the closed loop's"
        f" matched rate{verdict}"
    )


def _print_backlog(closed: PairingFigures) -> None:
    """Whether the closed loop's latency is service time or time queued behind a backlog."""
    ratio = closed.accepted_to_matched
    if ratio is None:
        return
    rates = f"({closed.accepted_per_s / 2:.1f} vs {closed.matched_pairs_per_s} pairs/s)"
    if closed.max_outstanding is not None:
        print(
            f"  accepted vs matched   {ratio:.2f}x {rates}, at most {closed.max_outstanding}"
            " pairs accepted and unmatched: the latency above is service time"
        )
    elif ratio > BACKLOG_RATIO:
        print(
            f"  accepted vs matched   accepted {ratio:.2f}x faster than matched {rates}: pairs"
            " queue up, so the latency above is mostly backlog (--max-outstanding N bounds it)"
        )
    else:
        print(f"  accepted vs matched   {ratio:.2f}x {rates}: little backlog built up")


def _print_verification(figures: VerificationFigures, closed: PairingFigures | None) -> None:
    print(
        f"\nVerification: veraid.verify_signature_bundle over the closed loop's {figures.bundles}"
        " bundles, in this process on one thread, before the stack started"
    )
    for label, warm in (("warm cache", True), ("no cache", False)):
        per_second = figures.warm_per_cpu_second if warm else figures.cold_per_cpu_second
        print(
            f"  {label:<21} {per_second:.0f} per CPU second"
            f" ({figures.ms_per_pair(warm=warm)} ms per pair of requests)"
        )
    if closed is None or not closed.matched_pairs_per_s:
        return
    # Each pair is two verifications, both in the ingress (nothing unverified reaches the
    # worker); its cache is warm after its first request.
    share = figures.core_share(closed.matched_pairs_per_s)
    cold = figures.core_share(closed.matched_pairs_per_s, warm=False)
    print(
        f"  at {closed.matched_pairs_per_s} matched pairs/s (closed loop) verification needs"
        f" {share:.0%} of one core ({cold:.0%} with no cache)"
    )
    ingress_ms = closed.cpu_ms_per_pair.get("ingress")
    if ingress_ms:
        print(
            f"  the ingress spent {ingress_ms} ms of CPU per pair, of which verification would"
            f" be {figures.ms_per_pair() / ingress_ms:.0%}"
        )


def cpu_text(usage: dict[str, float], digits: int = 0) -> str:
    # Components idle in this phase (the other phase's worker) are left out; "others" and
    # "machine" always show, as they tell whether the figures were measured on a quiet machine.
    shown = {n: v for n, v in usage.items() if round(v, digits) or n in ("others", "machine")}
    return ", ".join(f"{name} {value:.{digits}f}" for name, value in shown.items())


def report_json(report: Report) -> str:
    data = asdict(report)
    data["ratio_to_floor"] = report.ratio_to_floor
    data["acceptance_ratio"] = report.acceptance_ratio
    data["ratio_to_io_floor"] = report.ratio_to_io_floor
    data["worker_to_floor_worker"] = report.worker_to_floor_worker
    data["worker_to_io_floor_worker"] = report.worker_to_io_floor_worker
    data["verification_core_share"] = report.verification_core_share
    if report.closed_loop:
        data["closed_loop"]["accepted_to_matched"] = report.closed_loop.accepted_to_matched
    data["ok"] = report.ok
    return json.dumps(data, indent=2)
