"""Structured logging for both processes: JSON lines in production, readable lines locally.

Our own code logs through structlog with key-value context; libraries (Temporal's SDK,
Hypercorn, pymongo) log through the standard library. Both end up in one stream with
one format, so an operator can filter on the same keys everywhere.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
import temporalio.activity
import temporalio.workflow

from config import LogFormat


def configure_logging(*, level: str, log_format: LogFormat, component: str, version: str) -> None:
    service_fields = {"service": "letro-server", "component": component, "version": version}

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
    if log_format is LogFormat.JSON:
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
