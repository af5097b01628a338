"""The report as text for a person, ending with a one-line summary, or as JSON (``--json``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from benchmarks.exchanges.figures import ModuleFigures, PhaseFigures
from benchmarks.exchanges.run import Report
from benchmarks.pairing.output import cpu_text


def print_report(report: Report, title: str) -> None:
    before = " ".join(f"{v:.2f}" for v in report.load_average_before)
    after = " ".join(f"{v:.2f}" for v in report.load_average_after)
    print(f"Letro {title} benchmark, {report.started}, {report.cpus} CPUs")
    print(f"Stack: {report.stack}")
    for module, material in report.material.items():
        print(f"Requests ({module}): {material}")
    print(f"All requests made in {report.preparation_seconds} s beforehand")
    print(f"Load average (1/5/15 min): before {before}; after {after}")
    if report.measured:
        _print_phase(report, report.measured)
    if report.warmup and not report.warmup.ok:
        print(f"\nWarm-up FAILED: {_failures(report.warmup)}")
    print(f"\nCorrectness: {'OK' if report.ok else 'FAILED'}")
    print(summary_line(report))


def _print_phase(report: Report, phase: PhaseFigures) -> None:
    bound = f" for {report.seconds:g} s" if report.seconds is not None else ""
    print(
        f"\nClosed loop{bound}, concurrency {report.concurrency}, each lane waiting for its"
        f" replies before its next request: {phase.seconds} s from the first request to the"
        " last reply"
    )
    if report.seconds is not None and not phase.left_unsent:
        print(
            "  every prepared request was sent before the time was up: the rates are a floor"
            " (prepare more with --prepare-rate)"
        )
    for module in phase.modules:
        _print_module(module)
    print(f"\n  CPU % of one core     {cpu_text(phase.cpu_percent)}")
    if len(phase.modules) == 1:
        unit = _singular(phase.modules[0])
        print(f"  CPU ms per {unit:<10} {cpu_text(phase.cpu_ms_per_exchange, digits=1)}")
    else:
        print(f"  CPU ms per message    {cpu_text(phase.cpu_ms_per_message, digits=1)}")
    if phase.transport_retries:
        print(f"  transport retries     {phase.transport_retries} (same parcel id, not failures)")
    if phase.unexpected:
        print(f"  UNEXPECTED messages   {phase.unexpected}")


def _print_module(module: ModuleFigures) -> None:
    print(f"\n  {module.title}")
    print(f"    accepted requests     {module.requests_accepted}/{module.requests} (204)")
    print(
        f"    completed             {module.completed}/{module.exchanges}:"
        f" {module.per_s} {module.rate_unit}; {module.exactly_once} got each reply exactly once"
    )
    if module.latency_ms:
        lat = module.latency_ms
        print(
            f"    latency (last request to last reply)  p50 {lat.p50} ms  p95 {lat.p95} ms"
            f"  p99 {lat.p99} ms  max {lat.max} ms"
        )
    if module.counted_per_exchange:
        counted = ", ".join(f"{name} {n:.2f}" for name, n in module.counted_per_exchange.items())
        print(f"    per {_singular(module):<17} {counted}")
    if not module.ok:
        print(f"    FAILURES              {_module_failures(module)}")


def _singular(module: ModuleFigures) -> str:
    return module.rate_unit.removesuffix("/s").removesuffix("s")


def _module_failures(module: ModuleFigures) -> str:
    found = {k: v for k, v in asdict(module.correctness).items() if v}
    if module.wrong_content:
        found["wrong content"] = module.wrong_content
    return str(found)


def _failures(phase: PhaseFigures) -> str:
    found: dict[str, Any] = {m.module: _module_failures(m) for m in phase.modules if not m.ok}
    if phase.unexpected:
        found["unexpected"] = phase.unexpected
    return str(found)


def summary_line(report: Report) -> str:
    """One line: each module's rate and latency (the first module is the headline)."""
    phase = report.measured
    verdict = "correctness OK" if report.ok else "correctness FAILED"
    if phase is None or not phase.modules:
        return f"Summary: {report.benchmark}: nothing measured; {verdict}"
    if len(phase.modules) == 1:
        return f"Summary: {_single_summary(phase.modules[0], phase)}; {verdict}"
    parts = [_module_summary(module) for module in phase.modules]
    return f"Summary: {parts[0]} under the mix; {'; '.join(parts[1:])}; {verdict}"


def _module_summary(module: ModuleFigures) -> str:
    p99 = f"p99 {module.latency_ms.p99:.0f} ms" if module.latency_ms else "no replies"
    return f"{module.title} {module.per_s} {module.rate_unit} ({p99})"


def _single_summary(module: ModuleFigures, phase: PhaseFigures) -> str:
    unit = _singular(module)
    parts = [f"{module.title} {module.per_s} {module.rate_unit}"]
    if module.latency_ms:
        parts.append(f"p50 {module.latency_ms.p50:.0f} ms, p99 {module.latency_ms.p99:.0f} ms")
    worker = phase.cpu_ms_per_exchange.get("worker")
    if worker is not None:
        parts.append(f"worker {worker} ms CPU per {unit}")
    # The first counter is the module's total (such as all Authority calls); the rest detail it.
    counted = list(module.counted_per_exchange.items())[:1]
    parts += [f"{n:.2f} {name} per {unit}" for name, n in counted]
    return ", ".join(parts)


def report_json(report: Report) -> str:
    data = asdict(report)
    data["ok"] = report.ok
    return json.dumps(data, indent=2)
