"""Structured logging for both processes: JSON lines in production, readable lines locally.

Our own code logs through structlog with key-value context; libraries (Temporal's SDK,
Hypercorn, pymongo) log through the standard library. Both end up in one stream with
one format, so an operator can filter on the same keys everywhere.

With the ``gcp`` target (``LOG_TARGET=gcp``, the original server's variable) each JSON line
carries the fields Google Cloud Logging reads: ``severity``, ``message``, ``timestamp``,
``serviceContext`` and, for a request that came with ``X-Cloud-Trace-Context``,
``logging.googleapis.com/trace`` so its lines group under the request in the console.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
import temporalio.activity
import temporalio.workflow

from config import LogFormat, LogTarget

SERVICE_NAME = "letro-server"


# "TRACE_ID/SPAN_ID;o=OPTIONS", the header Google's load balancers and Cloud Run add.
_CLOUD_TRACE_CONTEXT = re.compile(r"([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?")
_GCP_SEVERITIES = {
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARNING",
    "warn": "WARNING",
    "error": "ERROR",
    "exception": "ERROR",
    "critical": "CRITICAL",
}


def trace_fields(header: str | None) -> dict[str, Any]:
    """The log context of an ``X-Cloud-Trace-Context`` header (nothing if absent or malformed)."""
    match = _CLOUD_TRACE_CONTEXT.fullmatch(header.strip()) if header else None
    if match is None:
        return {}
    trace_id, span_id, sampled = match.groups()
    fields: dict[str, Any] = {"traceId": trace_id.lower()}
    if span_id is not None:
        fields["spanId"] = span_id
    if sampled is not None:
        fields["traceSampled"] = sampled == "1"
    return fields


def gcp_fields(project: str | None) -> structlog.types.Processor:
    """Rename an event's fields to those of Cloud Logging's structured log format."""
    trace_prefix = f"projects/{project}/traces/" if project else ""

    def processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        level = str(event.pop("level", "info")).lower()
        event["severity"] = _GCP_SEVERITIES.get(level, "DEFAULT")
        event["message"] = event.pop("event", "")
        event["serviceContext"] = {"service": SERVICE_NAME, "version": event.get("version")}
        trace_id = event.pop("traceId", None)
        if trace_id is not None:
            event["logging.googleapis.com/trace"] = trace_prefix + trace_id
        span_id = event.pop("spanId", None)
        if span_id is not None:
            # Cloud Logging wants the span id as 16 hex digits; the header has it in decimal.
            event["logging.googleapis.com/spanId"] = f"{int(span_id) & (2**64 - 1):016x}"
        sampled = event.pop("traceSampled", None)
        if sampled is not None:
            event["logging.googleapis.com/trace_sampled"] = sampled
        return event

    return processor


def configure_logging(
    *,
    level: str,
    log_format: LogFormat,
    component: str,
    version: str,
    target: LogTarget | None = None,
    google_project: str | None = None,
) -> None:
    service_fields = {"service": SERVICE_NAME, "component": component, "version": version}

    def add_service_fields(
        _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in service_fields.items():
            event.setdefault(key, value)
        return event

    def flatten_temporal_context(
        _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        # Temporal's workflow and activity loggers attach a nested dict; flat keys are what
        # log search tools filter on.
        for key in ("temporal_workflow", "temporal_activity"):
            context = event.pop(key, None)
            if isinstance(context, dict):
                event.setdefault("workflowId", context.get("workflow_id"))
                event.setdefault("runId", context.get("run_id") or context.get("workflow_run_id"))
                event.setdefault("workflowType", context.get("workflow_type"))
                event.setdefault("namespace", context.get("namespace"))
                event.setdefault("taskQueue", context.get("task_queue"))
                if "activity_type" in context:
                    event.setdefault("activityType", context["activity_type"])
                    event.setdefault("attempt", context.get("attempt"))
        return event

    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service_fields,
        flatten_temporal_context,
    ]
    renderer: structlog.types.Processor
    if target is LogTarget.GCP:
        # Cloud Logging reads one JSON object per line, whatever LOG_FORMAT says.
        renderer = structlog.processors.JSONRenderer()
        shared += [structlog.processors.format_exc_info, gcp_fields(google_project)]
    elif log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Per-request lines that duplicate our own "accepted" and "emitted" lines.
    logging.getLogger("hypercorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The context goes in structured fields (see above), not appended to each message.
    temporalio.workflow.logger.workflow_info_on_message = False
    temporalio.activity.logger.activity_info_on_message = False
