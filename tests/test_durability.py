"""What was accepted is delivered, once, even when the worker crashes or the sink fails."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator

import httpx
import pytest

from infra.agents import new_agent
from infra.sink import ReceivedEvent
from tests.conftest import Sink, StartIngress, StartWorker, serve_sink
from tests.helpers import send_pairing_request

pytestmark = pytest.mark.integration

PAIRS = 60


def logical_messages(events: list[ReceivedEvent]) -> dict[str, set[str]]:
    """Distinct event ids per recipient: a redelivery under the same id is one message."""
    ids: dict[str, set[str]] = defaultdict(set)
    for event in events:
        ids[event.subject].add(event.event_id)
    return ids


async def test_worker_killed_mid_flight_loses_and_duplicates_nothing(
    start_worker: StartWorker, start_ingress: StartIngress, sink: Sink
) -> None:
    worker = start_worker("letro-durability", K_SINK=sink.url)
    ingress = start_ingress(TEMPORAL_TASK_QUEUE=worker.task_queue)
    pairs = [(new_agent("alice"), new_agent("bob")) for _ in range(PAIRS)]
    everyone = {agent.endpoint_id: agent for pair in pairs for agent in pair}

    def delivered(events: list[ReceivedEvent]) -> int:
        return len({e.subject for e in events if e.subject in everyone})

    async with httpx.AsyncClient(timeout=30) as http:
        firsts = await asyncio.gather(
            *(send_pairing_request(http, ingress.url, a, b) for a, b in pairs)
        )
        assert {r.status_code for r in firsts} == {204}
        seconds = asyncio.gather(*(send_pairing_request(http, ingress.url, b, a) for a, b in pairs))
        # Crash the worker once matches have started to flow, with most still to come.
        await sink.recorder.wait_for(lambda events: delivered(events) >= 2, deadline=30)
        worker.process.kill()
        killed_at = delivered(sink.recorder.events)
        assert {r.status_code for r in await seconds} == {204}  # Temporal takes them meanwhile

    start_worker("letro-durability", K_SINK=sink.url)
    await sink.recorder.wait_for(lambda events: delivered(events) == len(everyone), deadline=90)

    assert killed_at < len(everyone), "the worker must die with matches still undelivered"
    ours = [e for e in sink.recorder.events if e.subject in everyone]
    per_recipient = logical_messages(ours)
    assert {recipient: len(ids) for recipient, ids in per_recipient.items()} == dict.fromkeys(
        everyone, 1
    )
    for alice, bob in pairs:
        for me, contact in ((alice, bob), (bob, alice)):
            assert {e.data for e in ours if e.subject == me.endpoint_id} == {
                me.expected_match_from(contact)
            }


@pytest.fixture
async def flaky_sink() -> AsyncIterator[Sink]:
    async with serve_sink(fail_first=3) as sink:
        yield sink


async def test_emission_is_retried_under_the_same_event_id(
    start_worker: StartWorker, start_ingress: StartIngress, flaky_sink: Sink
) -> None:
    worker = start_worker("letro-flaky-sink", K_SINK=flaky_sink.url)
    ingress = start_ingress(TEMPORAL_TASK_QUEUE=worker.task_queue)
    alice, bob = new_agent("alice"), new_agent("bob")
    async with httpx.AsyncClient(timeout=10) as http:
        await send_pairing_request(http, ingress.url, alice, bob)
        await send_pairing_request(http, ingress.url, bob, alice)

    events = await flaky_sink.recorder.wait_for(lambda events: len(events) == 2, deadline=60)
    delivered_ids = {event.event_id for event in events}
    assert len(flaky_sink.recorder.attempted_ids) == 5  # three refusals, then both accepted
    assert set(flaky_sink.recorder.attempted_ids) == delivered_ids
    assert {event.subject for event in events} == {alice.endpoint_id, bob.endpoint_id}
