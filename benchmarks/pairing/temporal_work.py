"""Temporal work per pair, read from the pair workflows' histories after a phase.

The CPU figures say what a pair cost; these say why: how many history events and workflow
tasks the engine wrote and ran for it. They are read from a sample of the phase's pair
workflows, every run of each (a pair continues as new after its match), up to the moment
they are read: a lingering pair's final timer and completion come later, and are not counted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from activities.pairing_match import ACTIVITY_NAME

# Enough workflows for a stable mean; reading a history costs the server a little CPU, and
# this runs between phases, outside any measured interval.
SAMPLE = 100
_CONCURRENT_READS = 8


@dataclass(frozen=True)
class TemporalWork:
    pairs_sampled: int
    history_events_per_pair: float
    workflow_tasks_per_pair: float
    runs_per_pair: float
    # Pairs whose second request was taken in the same workflow task as the match was
    # sent: the least the protocol needs.
    matched_in_one_task: int


@dataclass(frozen=True)
class _PairHistory:
    events: int
    workflow_tasks: int
    runs: int
    one_task_match: bool


async def temporal_work(
    client: Client, workflow_type: str, started_after: datetime, sample: int = SAMPLE
) -> TemporalWork | None:
    """Figures over up to ``sample`` pair workflows of ``workflow_type`` started since then."""
    query = (
        f"WorkflowType = '{workflow_type}'"
        f" AND StartTime >= '{started_after.isoformat().replace('+00:00', 'Z')}'"
    )
    ids: list[str] = []
    async for execution in client.list_workflows(query):
        if execution.id not in ids:
            ids.append(execution.id)
        if len(ids) >= sample:
            break
    if not ids:
        return None
    reads = asyncio.Semaphore(_CONCURRENT_READS)

    async def read(workflow_id: str) -> _PairHistory:
        async with reads:
            return await _pair_history(client, workflow_id)

    histories = await asyncio.gather(*(read(workflow_id) for workflow_id in ids))
    return _summarise(histories)


async def _pair_history(client: Client, workflow_id: str) -> _PairHistory:
    events = tasks = 0
    one_task_match = False
    runs = [e async for e in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    for run in runs:
        history = await client.get_workflow_handle(workflow_id, run_id=run.run_id).fetch_history()
        kinds = [event.event_type for event in history.events]
        events += len(kinds)
        tasks += kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        one_task_match = one_task_match or _matched_in_one_task(history.events)
    return _PairHistory(events, tasks, len(runs), one_task_match)


def _matched_in_one_task(events: Sequence[HistoryEvent]) -> bool:
    """Whether the workflow task that took the second request also sent the matches.

    A signal is taken by the first task started after it. The matches are sent by a local
    activity, recorded as a marker among the commands of the task that ran it, that is
    between that task's completion and the next task (a timer's cancellation or an upsert
    may come first). A marker only after a later task means the match took a round trip.
    """
    kinds = [event.event_type for event in events]
    signals = [
        i
        for i, kind in enumerate(kinds)
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    if len(signals) < 2:
        return False
    try:
        started = kinds.index(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, signals[1])
        completed = kinds.index(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, started)
    except ValueError:
        return False
    for event in events[completed + 1 :]:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            return False
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and _is_match_delivery(event):
            return True
    return False


def _is_match_delivery(event: HistoryEvent) -> bool:
    """Whether the marker records the match's local activity (its ``data`` detail is JSON
    naming the activity type)."""
    details = event.marker_recorded_event_attributes.details.get("data")
    if details is None:
        return False
    for payload in details.payloads:
        try:
            data = json.loads(payload.data)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("activity_type") == ACTIVITY_NAME:
            return True
    return False


def _summarise(histories: Sequence[_PairHistory]) -> TemporalWork:
    count = len(histories)
    return TemporalWork(
        pairs_sampled=count,
        history_events_per_pair=round(sum(h.events for h in histories) / count, 1),
        workflow_tasks_per_pair=round(sum(h.workflow_tasks for h in histories) / count, 2),
        runs_per_pair=round(sum(h.runs for h in histories) / count, 2),
        matched_in_one_task=sum(h.one_task_match for h in histories),
    )
