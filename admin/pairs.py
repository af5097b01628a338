"""``pending`` and ``purge``: one VeraId id's pairing requests, messages and pair workflows."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities import pairing_store, undelivered
from activities.pairing_store import StoredRequest
from admin.report import Report, plural
from letro.veraid_ids import pairing_key
from workflows import legacy_pairing, veraid_pairing
from workflows.pairing import pair_workflow_id

PAIR_PREFIXES = (legacy_pairing.WORKFLOW_ID_PREFIX, veraid_pairing.WORKFLOW_ID_PREFIX)
TERMINATION_REASON = "Purged by an operator (python -m admin purge)"


def id_forms(veraid_id: str) -> frozenset[str]:
    """The id as given and in its matching form (``pairing_key``), as either may be stored:
    legacy requests keep ids exactly, VeraId ones in matching form.

    Raises:
        InvalidVeraidId: if ``veraid_id`` is not a VeraId user id.
    """
    return frozenset({veraid_id, pairing_key(veraid_id)})


@dataclass(frozen=True, slots=True)
class PairWorkflowId:
    prefix: str
    first: str
    second: str


def parse_pair_workflow_id(workflow_id: str) -> PairWorkflowId | None:
    """The parts of ``<prefix>:<id>:<id>``, or None for any other workflow id.

    A user name may hold ':' but never '@', and a domain name holds neither, so the first
    id ends at the first ':' after the first '@'.
    """
    prefix, _, ids = workflow_id.partition(":")
    at_sign = ids.find("@")
    end = ids.find(":", at_sign) if at_sign > 0 else -1
    if prefix not in PAIR_PREFIXES or end < 0:
        return None
    return PairWorkflowId(prefix, ids[:end], ids[end + 1 :])


def names(workflow_id: str, forms: Collection[str]) -> bool:
    """Whether ``workflow_id`` is a pair workflow of one of ``forms``."""
    pair = parse_pair_workflow_id(workflow_id)
    return pair is not None and (pair.first in forms or pair.second in forms)


def request_workflow_id(request: StoredRequest) -> str:
    prefix = veraid_pairing.WORKFLOW_ID_PREFIX
    if request.kind == pairing_store.LEGACY_KIND:
        prefix = legacy_pairing.WORKFLOW_ID_PREFIX
    return pair_workflow_id(prefix, request.requester_veraid_id, request.target_veraid_id)


# pending


async def pending(database: AsyncDatabase[dict[str, Any]], veraid_id: str) -> Report:
    forms = id_forms(veraid_id)
    requests = await pairing_store.find_naming(
        database[pairing_store.COLLECTION_NAME], sorted(forms)
    )
    lines = [f"{plural(len(requests), 'pending pairing request')} naming {veraid_id}"]
    lines += [f"  {_request_line(request, forms)}" for request in requests]
    data = {
        "veraidId": veraid_id,
        "requests": [_request_json(request, forms) for request in requests],
    }
    return Report(lines, data)


def _request_line(request: StoredRequest, forms: Collection[str]) -> str:
    if request.requester_veraid_id in forms:
        said = f"sent to {request.target_veraid_id}"
    else:
        said = f"received from {request.requester_veraid_id}"
    return (
        f"{request.kind}: {said}, first received {request.first_received.isoformat()}"
        f" (requester's endpoint {request.requester_endpoint_id};"
        f" workflow {request_workflow_id(request)})"
    )


def _request_json(request: StoredRequest, forms: Collection[str]) -> dict[str, str]:
    sent = request.requester_veraid_id in forms
    return {
        "kind": request.kind,
        "direction": "sent" if sent else "received",
        "peer": request.target_veraid_id if sent else request.requester_veraid_id,
        "requesterVeraId": request.requester_veraid_id,
        "targetVeraId": request.target_veraid_id,
        "requesterEndpointId": request.requester_endpoint_id,
        "firstReceived": request.first_received.isoformat(),
        "workflowId": request_workflow_id(request),
    }


# purge


@dataclass(frozen=True, slots=True)
class PairRun:
    workflow_id: str
    run_id: str
    running: bool

    def as_json(self) -> dict[str, str]:
        return {"workflowId": self.workflow_id, "runId": self.run_id}

    def __str__(self) -> str:
        return f"{self.workflow_id} (run {self.run_id})"


async def pair_runs(client: Client, forms: Collection[str], known: Iterable[str]) -> list[PairRun]:
    """Every run of the pair workflows naming one of ``forms``, running or closed.

    Visibility has no "ends with", and the id may be either of the two in a workflow id, so
    each prefix's workflows are listed and their ids parsed. ``known`` ids (from MongoDB)
    are looked up directly too: visibility lags behind a workflow just started.
    """
    runs: dict[tuple[str, str], PairRun] = {}
    for prefix in PAIR_PREFIXES:
        # The prefix is ours, never an operator's text: nothing to escape in the query.
        async for execution in client.list_workflows(f"WorkflowId STARTS_WITH '{prefix}:'"):
            if names(execution.id, forms):
                running = execution.status == WorkflowExecutionStatus.RUNNING
                runs[execution.id, execution.run_id] = PairRun(
                    execution.id, execution.run_id, running
                )
    listed = {run.workflow_id for run in runs.values()}
    for workflow_id in sorted(set(known) - listed):
        try:
            description = await client.get_workflow_handle(workflow_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                continue  # already gone
            raise
        running = description.status == WorkflowExecutionStatus.RUNNING
        runs[workflow_id, description.run_id] = PairRun(workflow_id, description.run_id, running)
    return sorted(runs.values(), key=lambda run: (run.workflow_id, run.run_id))


async def purge(
    database: AsyncDatabase[dict[str, Any]], client: Client, veraid_id: str, *, dry_run: bool
) -> Report:
    """Terminate the id's pair workflows, then delete its documents, then the histories:
    in that order, so that no workflow stores a document again once they are deleted."""
    forms = sorted(id_forms(veraid_id))
    requests_collection = database[pairing_store.COLLECTION_NAME]
    kept_collection = database[undelivered.COLLECTION_NAME]
    requests = await pairing_store.find_naming(requests_collection, forms)
    kept = await undelivered.find_kept(kept_collection, undelivered.naming(forms, []))
    known = {request_workflow_id(request) for request in requests}
    known |= {item.workflow_id for item in kept if names(item.workflow_id, forms)}
    runs = await pair_runs(client, forms, known)
    kept_query = undelivered.naming(forms, {run.workflow_id for run in runs})
    running = [run for run in runs if run.running]
    if dry_run:
        kept = await undelivered.find_kept(kept_collection, kept_query)
        return _purge_report(veraid_id, forms, runs, running, len(requests), len(kept), True)

    for run in running:
        await _terminate(client, run)
    deleted_requests = await pairing_store.delete_naming(requests_collection, forms)
    deleted_kept = await undelivered.delete_kept(kept_collection, kept_query)
    for run in runs:
        await _delete_history(client, run)
    return _purge_report(veraid_id, forms, runs, running, deleted_requests, deleted_kept, False)


async def _terminate(client: Client, run: PairRun) -> None:
    handle = client.get_workflow_handle(run.workflow_id, run_id=run.run_id)
    try:
        await handle.terminate(reason=TERMINATION_REASON)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:  # it closed in the meantime
            raise


async def _delete_history(client: Client, run: PairRun) -> None:
    request = DeleteWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=run.workflow_id, run_id=run.run_id),
    )
    try:
        await client.workflow_service.delete_workflow_execution(request)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:  # deleted already
            raise


def _verb(past: str, dry_run: bool) -> str:
    """``deleted``, or ``would delete`` in a dry run."""
    return f"would {past.removesuffix('d')}" if dry_run else past


def _purge_report(
    veraid_id: str,
    forms: list[str],
    runs: list[PairRun],
    terminated: list[PairRun],
    requests: int,
    kept: int,
    dry_run: bool,
) -> Report:
    terminate, delete = _verb("terminated", dry_run), _verb("deleted", dry_run)
    heading = f"Purge of {veraid_id} (as {' or '.join(forms)})"
    lines = [
        f"{heading}: dry run, nothing changed" if dry_run else heading,
        f"  {terminate} {plural(len(terminated), 'running pair workflow')}",
        *(f"    {run}" for run in terminated),
        f"  {delete} {plural(requests, 'pending pairing request')}",
        f"  {delete} {plural(kept, 'undelivered message')}",
        f"  {delete} the histories of {plural(len(runs), 'workflow run')}",
        *(f"    {run}" for run in runs),
    ]
    if runs and not dry_run:
        lines.append("Temporal deletes histories in the background: `describe` says once gone.")
    data = {
        "veraidId": veraid_id,
        "matchedAs": forms,
        "dryRun": dry_run,
        "terminated": [run.as_json() for run in terminated],
        "pairingRequests": requests,
        "undeliveredMessages": kept,
        "histories": [run.as_json() for run in runs],
    }
    return Report(lines, data)
