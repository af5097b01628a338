"""Log lines as operators' tools read them: run in a child process, since logging is global."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from typing import Any

import httpx
import pytest

from infra.agents import new_agent
from logs import trace_fields
from tests.conftest import Ingress, StartIngress, Worker
from tests.helpers import binary_event_headers, send_pairing_request

TRACE_ID = "105445aa7843bc8bf206b12000100000"


def _log_lines(target: str | None, body: str) -> list[dict[str, Any]]:
    script = textwrap.dedent(
        f"""
        import structlog
        from config import LogFormat
        from config import LogTarget
        from logs import configure_logging, trace_fields
        configure_logging(
            level="debug", log_format=LogFormat.JSON, component="ingress", version="1.2.3",
            target={None if target is None else f"LogTarget({target!r})"},
            google_project="letro-prod",
        )
        log = structlog.get_logger("test")
        """
    ) + textwrap.dedent(body)
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return [json.loads(line) for line in completed.stderr.splitlines()]


def test_gcp_lines_carry_cloud_loggings_fields() -> None:
    [info, error] = _log_lines(
        "gcp",
        f"""
        structlog.contextvars.bind_contextvars(**trace_fields("{TRACE_ID}/1;o=1"))
        log.info("Incoming service message accepted", parcelId="p-1")
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("Unexpected error")
        """,
    )
    assert info["severity"] == "INFO"
    assert info["message"] == "Incoming service message accepted"
    assert info["logging.googleapis.com/trace"] == f"projects/letro-prod/traces/{TRACE_ID}"
    assert info["logging.googleapis.com/spanId"] == "0000000000000001"
    assert info["logging.googleapis.com/trace_sampled"] is True
    assert info["serviceContext"] == {"service": "letro-server", "version": "1.2.3"}
    assert info["parcelId"] == "p-1"
    assert "level" not in info
    assert "event" not in info
    assert error["severity"] == "ERROR"
    assert "ZeroDivisionError" in error["exception"]


def test_standard_library_lines_get_a_severity_too() -> None:
    [line] = _log_lines("gcp", 'import logging; logging.getLogger("hypercorn").warning("slow")')
    assert (line["severity"], line["message"]) == ("WARNING", "slow")


def test_without_a_target_lines_keep_their_own_fields() -> None:
    [line] = _log_lines(None, 'log.info("hello")')
    assert (line["level"], line["event"]) == ("info", "hello")
    assert "severity" not in line


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"{TRACE_ID}/1;o=1", {"traceId": TRACE_ID, "spanId": "1", "traceSampled": True}),
        (TRACE_ID.upper(), {"traceId": TRACE_ID}),
        (f"{TRACE_ID}/99;o=0", {"traceId": TRACE_ID, "spanId": "99", "traceSampled": False}),
        ("not-a-trace", {}),
        (f"{TRACE_ID}/1;o=1\n{{}}", {}),
        (None, {}),
        ("", {}),
    ],
)
def test_trace_header(header: str | None, expected: dict[str, Any]) -> None:
    assert trace_fields(header) == expected


@pytest.mark.integration
async def test_ingress_lines_read_by_cloud_logging(
    start_ingress: StartIngress, http_worker: Worker, http: httpx.AsyncClient
) -> None:
    ingress = start_ingress(
        TEMPORAL_TASK_QUEUE=http_worker.task_queue,
        LOG_TARGET="gcp",
        GOOGLE_CLOUD_PROJECT="letro-prod",
    )
    alice, bob = new_agent("alice"), new_agent("bob")
    headers = binary_event_headers(sender_id=alice.endpoint_id)
    headers["X-Cloud-Trace-Context"] = f"{TRACE_ID}/7;o=1"

    response = await http.post(
        ingress.url, headers=headers, content=alice.legacy_pairing_request(bob)
    )

    assert response.status_code == 204
    assert ingress.process.log_file is not None
    text = await asyncio.to_thread(ingress.process.log_file.read_text)
    [accepted] = [json.loads(line) for line in text.splitlines() if headers["ce-id"] in line]
    assert accepted["severity"] == "INFO"
    assert accepted["message"] == "Incoming service message accepted"
    assert accepted["logging.googleapis.com/trace"] == f"projects/letro-prod/traces/{TRACE_ID}"


@pytest.mark.integration
async def test_worker_lines_name_the_workflow_type_namespace_and_task_queue(
    ingress: Ingress, http_worker: Worker, http: httpx.AsyncClient
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    await send_pairing_request(http, ingress.url, alice, bob)
    async with asyncio.timeout(20):
        while True:
            text = await asyncio.to_thread(http_worker.log_file.read_text)
            lines = [json.loads(line) for line in text.splitlines() if alice.veraid_id in line]
            stored = [
                line for line in lines if line.get("event") == "Contact request created or updated"
            ]
            if stored:
                break
            await asyncio.sleep(0.1)
    assert stored[0]["workflowType"] == "LegacyContactPairing"
    assert stored[0]["namespace"] == "default"
    assert stored[0]["taskQueue"] == http_worker.task_queue
