"""Prometheus metrics, scraped from a real worker and ingress after real traffic."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from infra.agents import VeraidOrg, new_agent, new_veraid_agent
from infra.services import free_port
from letro.content_types import CONTACT_PAIRING_REQUEST, MAX_CONTENT_LENGTHS, PAIRING_REQUEST_TMP
from tests.conftest import Ingress, Sink, StartIngress, StartWorker, Worker
from tests.helpers import binary_event_headers, send_pairing_request

pytestmark = pytest.mark.integration

TIMEOUT = 20.0


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match.group(3))
    return total


async def scrape(http: httpx.AsyncClient, port: int) -> str:
    response = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    return response.text


@pytest.fixture(scope="module")
def metered(
    start_worker: StartWorker, start_ingress: StartIngress, sink: Sink
) -> tuple[Worker, Ingress, int, int]:
    worker_port, ingress_port = free_port(), free_port()
    worker = start_worker("letro-metrics", K_SINK=sink.url, METRICS_PORT=str(worker_port))
    ingress = start_ingress(TEMPORAL_TASK_QUEUE=worker.task_queue, METRICS_PORT=str(ingress_port))
    return worker, ingress, worker_port, ingress_port


async def test_counters_move_with_real_traffic(
    http: httpx.AsyncClient,
    metered: tuple[Worker, Ingress, int, int],
    sink: Sink,
    veraid_org: VeraidOrg,
) -> None:
    _, ingress, worker_port, ingress_port = metered
    alice, bob = new_agent("alice"), new_agent("bob")
    for requester, target in ((alice, bob), (bob, alice)):
        assert (await send_pairing_request(http, ingress.url, requester, target)).status_code == 204
    # Refused at the ingress: malformed, then over its size cap.
    malformed = await http.post(
        ingress.url, headers=binary_event_headers(sender_id=alice.endpoint_id), content=b"a,b"
    )
    too_large = await http.post(
        ingress.url,
        headers=binary_event_headers(sender_id=alice.endpoint_id),
        content=b"x" * (MAX_CONTENT_LENGTHS[PAIRING_REQUEST_TMP] + 1),
    )
    assert (malformed.status_code, too_large.status_code) == (204, 413)
    # Verified, and refused with a failure reply: a request signed by the organisation's bot.
    carol = new_veraid_agent(veraid_org, "carol")
    bot_request = veraid_org.bot_request(carol, "dave@tickety.boo")
    response = await http.post(
        ingress.url,
        headers=binary_event_headers(
            sender_id=carol.endpoint_id, content_type=CONTACT_PAIRING_REQUEST
        ),
        content=bot_request,
    )
    assert response.status_code == 204
    await sink.recorder.wait_for(
        lambda _: all(sink.recorder.to(a.endpoint_id) for a in (alice, bob, carol)), TIMEOUT
    )

    ingress_metrics = await scrape(http, ingress_port)
    assert (
        sample(
            ingress_metrics,
            "letro_ingress_requests_total",
            status="204",
            content_type=PAIRING_REQUEST_TMP,
        )
        >= 3
    )
    assert sample(ingress_metrics, "letro_ingress_requests_total", status="413") >= 1
    assert (
        sample(
            ingress_metrics,
            "letro_ingress_refusals_total",
            content_type=PAIRING_REQUEST_TMP,
            reason="Refused malformed legacy pairing request",
        )
        >= 1
    )
    assert sample(ingress_metrics, "letro_ingress_handoff_seconds_count") >= 3
    assert (
        sample(
            ingress_metrics,
            "letro_ingress_check_seconds_count",
            content_type=CONTACT_PAIRING_REQUEST,
        )
        >= 1
    )

    async with asyncio.timeout(TIMEOUT):  # the worker counts as its tasks complete
        while True:
            worker_metrics = await scrape(http, worker_port)
            if sample(worker_metrics, "letro_pairing_matches_total", protocol="legacy") >= 1:
                break
            await asyncio.sleep(0.2)
    assert sample(worker_metrics, "letro_pairing_requests_total", protocol="legacy") >= 2
    assert (
        sample(
            worker_metrics, "letro_pairing_failure_replies_total", reason="INVALID_REQUESTER_VERAID"
        )
        >= 1
    )
    assert sample(worker_metrics, "letro_egress_attempts_total", outcome="delivered") >= 3
    # The SDK's own metrics come out of the same endpoint.
    assert sample(worker_metrics, "temporal_workflow_task_execution_latency_count") >= 1
