"""``describe``: one workflow's state in plain words, from Temporal and its ``status`` query."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.failure.v1 import Failure
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from admin.report import FAILED, Report, listing, plural
from contract.accounts import AccountCreationStatus
from contract.pairing import PairingStatus
from workflows import visibility

# How long a worker has to answer the status query (a closed workflow is replayed for it).
QUERY_TIMEOUT = timedelta(seconds=5)


def pair_sentences(status: PairingStatus) -> list[str]:
    waiting = status.pending_requesters
    if not waiting:
        first = "No request is waiting for its match."
    elif len(waiting) == 1:
        first = f"1 request is waiting for its match, from {waiting[0]}."
    else:
        first = f"{len(waiting)} requests are waiting for their match, from {listing(waiting)}."
    return [
        first,
        f"Over the pair's whole life: {plural(status.matches, 'match', 'matches')}"
        f" and {plural(status.expirations, 'request')} expired unmatched.",
        f"In this run: {plural(status.requests_handled, 'new request')} taken in and"
        f" {plural(status.redeliveries_ignored, 'redelivered request')} ignored.",
    ]


def account_sentences(status: AccountCreationStatus) -> list[str]:
    created = (
        f"The account {status.assigned_user_id} was created."
        if status.assigned_user_id
        else "No account was created (yet)."
    )
    return [
        created,
        f"{plural(status.copies_received, 'copy', 'copies')} of the request received,"
        f" {plural(status.replies_sent, 'reply', 'replies')} delivered.",
    ]


# The workflow types with a ``status`` query: its result type and how to say it. Type names
# are in every history, so they never change.
_STATUS_QUERIES: dict[str, tuple[type[Any], Callable[[Any], list[str]]]] = {
    "LegacyContactPairing": (PairingStatus, pair_sentences),
    "VeraidContactPairing": (PairingStatus, pair_sentences),
    "AccountCreation": (AccountCreationStatus, account_sentences),
}


async def describe(client: Client, workflow_id: str) -> Report:
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return Report([f"No workflow has id {workflow_id}"], {"workflowId": workflow_id}, FAILED)
    lines = _overview(description, await description.static_summary())
    data = _overview_json(description, await description.static_summary())
    state_lines, data["state"] = await _state(client, description)
    lines += state_lines
    activities = list(description.raw_description.pending_activities)
    lines.append(f"Pending activities: {len(activities) or 'none'}")
    lines += [f"  {line}" for activity in activities for line in _activity_lines(activity)]
    data["pendingActivities"] = [_activity_json(activity) for activity in activities]
    return Report(lines, data)


def _overview(description: WorkflowExecutionDescription, summary: str | None) -> list[str]:
    status = _status_name(description)
    closed = f", closed {description.close_time.isoformat()}" if description.close_time else ""
    return [
        f"Workflow {description.id} (run {description.run_id})",
        f"Type: {description.workflow_type}",
        f"Status: {status}, started {description.start_time.isoformat()}{closed}",
        f"Summary: {summary or 'none'}",
        f"Search attributes: {_attributes_line(description)}",
    ]


def _overview_json(
    description: WorkflowExecutionDescription, summary: str | None
) -> dict[str, Any]:
    return {
        "workflowId": description.id,
        "runId": description.run_id,
        "type": description.workflow_type,
        "status": _status_name(description),
        "startTime": description.start_time.isoformat(),
        "closeTime": description.close_time.isoformat() if description.close_time else None,
        "summary": summary,
        "searchAttributes": _attributes(description),
    }


def _status_name(description: WorkflowExecutionDescription) -> str:
    status = description.status
    return status.name.lower().replace("_", " ") if status is not None else "unknown"


def _attributes(description: WorkflowExecutionDescription) -> dict[str, str | bool | None]:
    attributes = description.typed_search_attributes
    return {
        visibility.MODULE.name: attributes.get(visibility.MODULE),
        visibility.OUTCOME.name: attributes.get(visibility.OUTCOME),
        visibility.PENDING.name: attributes.get(visibility.PENDING),
    }


def _attributes_line(description: WorkflowExecutionDescription) -> str:
    return ", ".join(
        f"{name}={_value_text(value)}" for name, value in _attributes(description).items()
    )


def _value_text(value: str | bool | None) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"  # as a visibility query writes it
    return value


async def _state(
    client: Client, description: WorkflowExecutionDescription
) -> tuple[list[str], dict[str, Any] | None]:
    query = _STATUS_QUERIES.get(description.workflow_type)
    if query is None:
        return ["State: this workflow type has no status query"], None
    result_type, sentences = query
    handle = client.get_workflow_handle(description.id, run_id=description.run_id)
    try:
        status = await handle.query("status", result_type=result_type, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as error:
        return [f"State: no worker answered the status query ({error})"], None
    return ["State:", *(f"  {sentence}" for sentence in sentences(status))], dataclasses.asdict(
        status
    )


def _activity_lines(activity: PendingActivityInfo) -> list[str]:
    lines = [
        f"{activity.activity_type.name} (id {activity.activity_id}):"
        f" {_activity_state(activity)}, attempt {activity.attempt}"
    ]
    if activity.HasField("last_failure"):
        lines.append(f"  last failure: {failure_text(activity.last_failure)}")
    if activity.HasField("next_attempt_schedule_time"):
        lines.append(f"  next attempt: {_time(activity.next_attempt_schedule_time)}")
    if activity.HasField("expiration_time"):
        lines.append(f"  retried until: {_time(activity.expiration_time)}")
    return lines


def _activity_json(activity: PendingActivityInfo) -> dict[str, Any]:
    has = activity.HasField
    return {
        "activityType": activity.activity_type.name,
        "activityId": activity.activity_id,
        "state": _activity_state(activity),
        "attempt": activity.attempt,
        "lastFailure": failure_text(activity.last_failure) if has("last_failure") else None,
        "nextAttempt": (
            _time(activity.next_attempt_schedule_time)
            if has("next_attempt_schedule_time")
            else None
        ),
        "retriedUntil": _time(activity.expiration_time) if has("expiration_time") else None,
    }


def _activity_state(activity: PendingActivityInfo) -> str:
    name = PendingActivityState.Name(activity.state)
    return name.removeprefix("PENDING_ACTIVITY_STATE_").lower()


def failure_text(failure: Failure) -> str:
    """A failure and its causes, as ``workflows.replies.failure_reason`` words them."""
    links = []
    current: Failure | None = failure
    while current is not None:
        application = current.HasField("application_failure_info")
        kind = current.application_failure_info.type if application else ""
        links.append(f"{kind}: {current.message}" if kind else current.message)
        current = current.cause if current.HasField("cause") else None
    return ", after: ".join(links)


def _time(timestamp: Timestamp) -> str:
    return timestamp.ToDatetime(tzinfo=UTC).isoformat()
