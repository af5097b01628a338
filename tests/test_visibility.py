"""What an operator finds in the Web UI: search attributes and summaries, queried for real."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory

from infra.agents import VeraidOrg, new_agent, new_veraid_agent
from letro.content_types import CONTACT_PAIRING_REQUEST
from tests.conftest import Ingress, Sink
from tests.helpers import binary_event_headers, send_pairing_request
from workflows.legacy_pairing import workflow_id_for

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


async def ids_matching(
    client: Client, query: str, expected: set[str], unexpected: frozenset[str] = frozenset()
) -> set[str]:
    """The workflow ids ``query`` lists, once it lists all of ``expected`` and none of
    ``unexpected`` (visibility lags behind the workflows)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            found = {execution.id async for execution in client.list_workflows(query)}
            if expected <= found and not unexpected & found:
                return found
            await asyncio.sleep(0.2)


async def settled_after_signals(handle: WorkflowHandle[Any, Any], signals: int) -> WorkflowHistory:
    """The history once it holds ``signals`` signals and a workflow task completed after them."""
    signalled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    completed = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    async with asyncio.timeout(TIMEOUT):
        while True:
            history = await handle.fetch_history()
            types = [event.event_type for event in history.events]
            if types.count(signalled) >= signals:
                last_signal = max(i for i, t in enumerate(types) if t == signalled)
                if completed in types[last_signal:]:
                    return history
            await asyncio.sleep(0.1)


def upserted_names(history: WorkflowHistory) -> list[set[str]]:
    """The search attributes each upsert of the history set, in order."""
    upserted = EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    return [
        set(
            event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        )
        for event in history.events
        if event.event_type == upserted
    ]


async def test_pending_and_matched_pairs_are_found_by_query(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink, temporal_client: Client
) -> None:
    alice, bob, carol, dave = (new_agent(name) for name in ("alice", "bob", "carol", "dave"))
    await send_pairing_request(http, ingress.url, alice, bob)  # alice waits for bob
    await send_pairing_request(http, ingress.url, carol, dave)
    await send_pairing_request(http, ingress.url, dave, carol)  # carol and dave match
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(dave.endpoint_id)), TIMEOUT)
    waiting = workflow_id_for(alice.veraid_id, bob.veraid_id)
    matched = workflow_id_for(carol.veraid_id, dave.veraid_id)

    pending = await ids_matching(
        temporal_client,
        "LetroModule = 'legacy-pairing' AND LetroPending = true AND ExecutionStatus = 'Running'",
        {waiting},
        unexpected=frozenset({matched}),
    )
    done = await ids_matching(
        temporal_client, "LetroModule = 'legacy-pairing' AND LetroOutcome = 'matched'", {matched}
    )

    assert matched not in pending  # it was pending, until the match
    assert waiting not in done
    # Resends change nothing the Web UI shows: no upsert (each would be a history event).
    for _ in range(2):
        await send_pairing_request(http, ingress.url, alice, bob)
    handle = temporal_client.get_workflow_handle(waiting)
    history = await settled_after_signals(handle, 3)
    # The only upsert is core's, of TemporalChangeVersion, once per patch id a run meets.
    assert upserted_names(history) == [{"TemporalChangeVersion"}]
    matched_description = await temporal_client.get_workflow_handle(matched).describe()
    matched_run = temporal_client.get_workflow_handle(
        matched, run_id=matched_description.raw_description.workflow_execution_info.first_run_id
    )
    assert upserted_names(await matched_run.fetch_history()) == [
        {"TemporalChangeVersion"},
        {"LetroOutcome", "LetroPending"},
    ]
    description = await handle.describe()
    assert await description.static_summary() == (
        f"Legacy pairing: {min(alice.veraid_id, bob.veraid_id)} and "
        f"{max(alice.veraid_id, bob.veraid_id)}"
    )


async def test_refusals_are_found_by_reason(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    veraid_org: VeraidOrg,
) -> None:
    bot = new_veraid_agent(veraid_org, "bot")
    headers = binary_event_headers(sender_id=bot.endpoint_id, content_type=CONTACT_PAIRING_REQUEST)
    response = await http.post(
        ingress.url, headers=headers, content=veraid_org.bot_request(bot, "eve@tickety.boo")
    )
    assert response.status_code == 204
    refusal = f"contact-pairing-refusal:{bot.endpoint_id}:{headers['ce-id']}"

    found = await ids_matching(
        temporal_client,
        "LetroModule = 'contact-pairing-refusal' AND LetroOutcome = 'INVALID_REQUESTER_VERAID'",
        {refusal},
    )

    assert refusal in found
