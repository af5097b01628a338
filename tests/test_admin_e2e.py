"""Undeliverable messages and the operator commands, through the real stack.

A sink that refuses one recipient with a 4xx, a worker with a short retry window, the
ingress, Temporal and MongoDB; every operator command runs as ``python -m admin`` in a
subprocess with the worker's environment, and its output and effect are checked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from contract.pairing import PairingInput, PairingOutcome, PairingRequestReceived
from infra.agents import Agent, VeraidOrg, new_agent, new_veraid_agent
from infra.processes import REPO_ROOT, python_module
from letro.content_types import CONTACT_PAIRING_REQUEST, PAIRING_MATCH_TMP
from tests.conftest import Ingress, Sink, StartIngress, StartWorker, Worker, serve_sink
from tests.helpers import SERVER_ENDPOINT_ID, binary_event_headers, send_pairing_request
from workflows import visibility
from workflows.legacy_pairing import LegacyContactPairing, workflow_id_for

pytestmark = pytest.mark.integration

DATABASE = "letro_admin"
WINDOW_SECONDS = 3
TIMEOUT = 60.0
REFUSED = 400


@dataclass
class AdminStack:
    ingress: Ingress
    worker: Worker
    sink: Sink
    refused: dict[str, int]  # recipient endpoint id -> the status the sink answers
    env: dict[str, str]  # the worker's environment, for python -m admin

    def documents(
        self, mongo: AsyncMongoClient[dict[str, Any]], collection: str
    ) -> AsyncCollection[dict[str, Any]]:
        return mongo[DATABASE][collection]


@pytest.fixture(scope="module")
async def stack(
    start_worker: StartWorker, start_ingress: StartIngress, base_env: dict[str, str]
) -> AsyncIterator[AdminStack]:
    refused: dict[str, int] = {}
    async with serve_sink(refuse=refused) as sink:
        worker = start_worker(
            "letro-admin",
            K_SINK=sink.url,
            MONGODB_DB=DATABASE,
            EGRESS_RETRY_SECONDS=str(WINDOW_SECONDS),
        )
        ingress = start_ingress(TEMPORAL_TASK_QUEUE=worker.task_queue)
        env = {**base_env, "MONGODB_DB": DATABASE, "K_SINK": sink.url, "LOG_LEVEL": "warning"}
        yield AdminStack(ingress, worker, sink, refused, env)
        ingress.process.stop()  # while the sink still answers
        worker.process.stop()


@dataclass(frozen=True)
class Ran:
    status: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


async def admin(env: dict[str, str], *args: str) -> Ran:
    """``python -m admin *args`` with ``env``, as an operator runs it."""
    process = await asyncio.create_subprocess_exec(
        *python_module("admin", *args),
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, stdout.decode(), stderr.decode())


def legacy_signal(requester: Agent, target: Agent) -> PairingRequestReceived:
    """The signal the ingress would make of ``requester``'s legacy request."""
    return PairingRequestReceived(
        parcel_id=str(uuid.uuid4()),
        server_endpoint_id=SERVER_ENDPOINT_ID,
        requester_endpoint_id=requester.endpoint_id,
        requester_veraid_id=requester.veraid_id,
        target_veraid_id=target.veraid_id,
        requester_id_key_b64=base64.b64encode(requester.id_key).decode("ascii"),
    )


async def start_pair(
    client: Client,
    task_queue: str,
    first: Agent,
    second: Agent,
    *,
    linger_seconds: float = 3600,
) -> WorkflowHandle[Any, PairingOutcome]:
    """A legacy pair workflow started as the ingress starts it, with ``first``'s request;
    ``linger_seconds``, its deduplication window after a match, lets a test see it end."""
    return await client.start_workflow(
        LegacyContactPairing.run,
        PairingInput(
            veraid_ids=sorted((first.veraid_id, second.veraid_id)),
            request_ttl_seconds=3600,
            dedup_window_seconds=linger_seconds,
        ),
        id=workflow_id_for(first.veraid_id, second.veraid_id),
        task_queue=task_queue,
        start_signal="pairing_request",
        start_signal_args=[legacy_signal(first, second)],
        search_attributes=visibility.at_start(visibility.LEGACY_PAIRING, pending=True),
    )


async def kept_message(
    stack: AdminStack, mongo: AsyncMongoClient[dict[str, Any]], recipient: Agent
) -> dict[str, Any]:
    collection = stack.documents(mongo, "undeliveredmessages")
    async with asyncio.timeout(TIMEOUT):
        while True:
            document = await collection.find_one({"recipientEndpointId": recipient.endpoint_id})
            if document is not None:
                return document
            await asyncio.sleep(0.2)


async def stored_requests(
    stack: AdminStack, mongo: AsyncMongoClient[dict[str, Any]], veraid_id: str, count: int
) -> list[dict[str, Any]]:
    """The stored requests naming ``veraid_id``, once there are ``count`` of them."""
    collection = stack.documents(mongo, "contactpairingrequests")
    query = {"$or": [{"requesterVeraId": veraid_id}, {"targetVeraId": veraid_id}]}
    async with asyncio.timeout(TIMEOUT):
        while True:
            documents = await collection.find(query).to_list()
            if len(documents) >= count:
                return documents
            await asyncio.sleep(0.2)


async def gone(client: Client, workflow_id: str) -> None:
    """Wait until Temporal no longer knows ``workflow_id`` (deletion is asynchronous)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            try:
                await client.get_workflow_handle(workflow_id).describe()
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    return
                raise
            await asyncio.sleep(0.2)


async def test_a_refused_match_is_kept_the_pair_completes_and_resend_delivers_it(
    stack: AdminStack,
    temporal_client: Client,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    http: httpx.AsyncClient,
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    stack.refused[alice.endpoint_id] = REFUSED
    handle = await start_pair(
        temporal_client, stack.worker.task_queue, bob, alice, linger_seconds=2
    )
    response = await send_pairing_request(http, stack.ingress.url, alice, bob)
    assert response.status_code == 204

    outcome = await asyncio.wait_for(handle.result(), TIMEOUT)

    # The workflow completed normally, its match counted, and bob got his.
    assert outcome == PairingOutcome(matches=1, expirations=0)
    [to_bob] = stack.sink.recorder.to(bob.endpoint_id)
    assert to_bob.data == bob.expected_match_from(alice)
    assert stack.sink.recorder.to(alice.endpoint_id) == []
    document = await kept_message(stack, mongo_client, alice)
    event_id = document["eventId"]
    assert stack.sink.recorder.attempted_ids.count(event_id) >= 3  # retried, then kept
    assert document["contentType"] == PAIRING_MATCH_TMP
    assert bytes(document["content"]) == alice.expected_match_from(bob)
    assert document["senderEndpointId"] == SERVER_ENDPOINT_ID
    assert document["workflowId"] == handle.id
    assert document["veraidIds"] == sorted((alice.veraid_id, bob.veraid_id))
    assert document["reason"].endswith(
        f"SinkRejectedEvent: Sink answered HTTP {REFUSED} to event {event_id}"
    )
    # Temporal stops retrying once the next backoff would pass the window: here attempts
    # at 0 s (local), 0 s and 1 s (durable), the next one due at 3 s.
    failing_for = document["lastFailure"] - document["firstFailure"]
    assert timedelta(seconds=1) <= failing_for <= timedelta(seconds=WINDOW_SECONDS + 2)
    pending = stack.documents(mongo_client, "contactpairingrequests")
    assert await pending.count_documents({"requesterVeraId": alice.veraid_id}) == 0
    # The run that matched (it then continued as new, remembering the parcels only).
    history = await temporal_client.get_workflow_handle(
        handle.id, run_id=handle.first_execution_run_id
    ).fetch_history()
    activities = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert activities == ["emit_service_message"]  # the durable retries: one activity
    # The new path replays too: its decisions come from the history, not the worker's setting.
    await Replayer(workflows=[LegacyContactPairing]).replay_workflow(history)

    listed = await admin(stack.env, "undelivered", "list")
    assert listed.status == 0, listed.stderr
    assert f"{event_id}: {PAIRING_MATCH_TMP} to {alice.endpoint_id}" in listed.stdout
    assert f"from workflow {handle.id}" in listed.stdout
    [entry] = [
        m
        for m in (await admin(stack.env, "undelivered", "list", "--json")).json()["messages"]
        if m["eventId"] == event_id
    ]
    assert base64.b64decode(entry["contentBase64"]) == alice.expected_match_from(bob)

    # While the sink still refuses, a resend fails, says so, and keeps the message.
    failed = await admin(stack.env, "undelivered", "resend", "--all", "--json")
    assert failed.status == 1
    [result] = [r for r in failed.json()["results"] if r["eventId"] == event_id]
    assert result["outcome"] == "failed"
    assert f"HTTP {REFUSED}" in result["detail"]
    assert await kept_message(stack, mongo_client, alice)

    del stack.refused[alice.endpoint_id]
    resent = await admin(stack.env, "undelivered", "resend", "--event-id", event_id)

    assert resent.status == 0, resent.stderr
    assert f"{event_id}: delivered to {alice.endpoint_id}" in resent.stdout
    [to_alice] = stack.sink.recorder.to(alice.endpoint_id)  # exactly one delivery
    assert to_alice.event_id == event_id
    assert to_alice.data == alice.expected_match_from(bob)
    assert to_alice.content_type == PAIRING_MATCH_TMP
    kept = stack.documents(mongo_client, "undeliveredmessages")
    assert await kept.count_documents({"eventId": event_id}) == 0
    again = await admin(stack.env, "undelivered", "resend", "--event-id", event_id)
    assert again.status == 1
    assert f"No undelivered message has event id {event_id}" in again.stdout


async def test_pending_lists_both_directions_and_both_kinds(
    stack: AdminStack,
    veraid_org: VeraidOrg,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    http: httpx.AsyncClient,
) -> None:
    carol_veraid, erin = new_veraid_agent(veraid_org, "carol"), new_veraid_agent(veraid_org, "erin")
    carol = Agent.named(carol_veraid.user_name, veraid_org.domain)
    dave = new_agent("dave")
    assert (await send_pairing_request(http, stack.ingress.url, carol, dave)).status_code == 204
    headers = binary_event_headers(sender_id=erin.endpoint_id, content_type=CONTACT_PAIRING_REQUEST)
    response = await http.post(
        stack.ingress.url, headers=headers, content=erin.pairing_request(carol.veraid_id)
    )
    assert response.status_code == 204
    await stored_requests(stack, mongo_client, carol.veraid_id, 2)

    # Typed as a person might: the id is matched in its matching form.
    shouted = carol.veraid_id.upper()
    ran = await admin(stack.env, "pending", shouted)
    as_json = await admin(stack.env, "--json", "pending", shouted)

    assert ran.status == 0, ran.stderr
    assert ran.stdout.startswith(f"2 pending pairing requests naming {shouted}\n")
    assert f"legacy: sent to {dave.veraid_id}, first received 20" in ran.stdout
    assert f"veraid: received from {erin.veraid_id}, first received 20" in ran.stdout
    requests = {r["kind"]: r for r in as_json.json()["requests"]}
    assert requests.keys() == {"legacy", "veraid"}
    assert (requests["legacy"]["direction"], requests["legacy"]["peer"]) == ("sent", dave.veraid_id)
    assert (requests["veraid"]["direction"], requests["veraid"]["peer"]) == (
        "received",
        erin.veraid_id,
    )
    assert requests["veraid"]["requesterEndpointId"] == erin.endpoint_id
    assert requests["legacy"]["workflowId"] == workflow_id_for(carol.veraid_id, dave.veraid_id)


async def test_purge_deletes_an_id_s_documents_workflows_and_histories(
    stack: AdminStack,
    temporal_client: Client,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    http: httpx.AsyncClient,
) -> None:
    frank, gina, hank = new_agent("frank"), new_agent("gina"), new_agent("hank")
    ivan, judy = new_agent("ivan"), new_agent("judy")
    # A pending request (running workflow), a closed pair whose match to frank was kept,
    # and someone else's pending request, which must survive.
    assert (await send_pairing_request(http, stack.ingress.url, frank, gina)).status_code == 204
    assert (await send_pairing_request(http, stack.ingress.url, ivan, judy)).status_code == 204
    stack.refused[frank.endpoint_id] = REFUSED
    closed = await start_pair(
        temporal_client, stack.worker.task_queue, hank, frank, linger_seconds=1
    )
    await send_pairing_request(http, stack.ingress.url, frank, hank)
    await asyncio.wait_for(closed.result(), TIMEOUT)
    await kept_message(stack, mongo_client, frank)
    await stored_requests(stack, mongo_client, frank.veraid_id, 1)
    await stored_requests(stack, mongo_client, ivan.veraid_id, 1)
    running = workflow_id_for(frank.veraid_id, gina.veraid_id)

    dry = await admin(stack.env, "purge", frank.veraid_id, "--dry-run", "--json")

    assert dry.status == 0, dry.stderr
    plan = dry.json()
    assert plan["dryRun"] is True
    assert [run["workflowId"] for run in plan["terminated"]] == [running]
    assert {run["workflowId"] for run in plan["histories"]} == {running, closed.id}
    assert (plan["pairingRequests"], plan["undeliveredMessages"]) == (1, 1)
    assert (await temporal_client.get_workflow_handle(running).describe()).status is not None
    await stored_requests(stack, mongo_client, frank.veraid_id, 1)  # nothing changed

    purged = await admin(stack.env, "purge", frank.veraid_id)

    assert purged.status == 0, purged.stderr
    assert "  terminated 1 running pair workflow\n" in purged.stdout
    assert "  deleted 1 pending pairing request\n" in purged.stdout
    assert "  deleted 1 undelivered message\n" in purged.stdout
    # The running pair's run, and the closed pair's.
    assert "  deleted the histories of 2 workflow runs\n" in purged.stdout
    requests = stack.documents(mongo_client, "contactpairingrequests")
    kept = stack.documents(mongo_client, "undeliveredmessages")
    naming_frank = {
        "$or": [{"requesterVeraId": frank.veraid_id}, {"targetVeraId": frank.veraid_id}]
    }
    assert await requests.count_documents(naming_frank) == 0
    assert await kept.count_documents({"veraidIds": frank.veraid_id}) == 0
    await gone(temporal_client, running)
    await gone(temporal_client, closed.id)
    # Someone else's request and workflow are untouched.
    assert await requests.count_documents({"requesterVeraId": ivan.veraid_id}) == 1
    other = temporal_client.get_workflow_handle(workflow_id_for(ivan.veraid_id, judy.veraid_id))
    assert (await other.describe()).status is not None


async def test_describe_says_a_pair_s_state_and_its_failing_delivery(
    stack: AdminStack, start_worker: StartWorker, temporal_client: Client
) -> None:
    # A worker whose window is long, so the delivery is still being retried when described.
    worker = start_worker(
        "letro-admin-describe",
        K_SINK=stack.sink.url,
        MONGODB_DB=DATABASE,
        EGRESS_RETRY_SECONDS="600",
    )
    kate, liam = new_agent("kate"), new_agent("liam")
    stack.refused[kate.endpoint_id] = REFUSED
    handle = await start_pair(temporal_client, worker.task_queue, liam, kate)
    try:
        await handle.signal("pairing_request", legacy_signal(kate, liam))
        await failing_activity(handle)

        ran = await admin(stack.env, "describe", handle.id)
        as_json = (await admin(stack.env, "describe", handle.id, "--json")).json()
    finally:
        await handle.terminate()
        worker.process.stop()

    assert ran.status == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == f"Workflow {handle.id} (run {handle.result_run_id})"
    assert "Type: LegacyContactPairing" in lines
    assert lines[2].startswith("Status: running, started 20")
    assert (
        "Search attributes: LetroModule=legacy-pairing, LetroOutcome=unset, LetroPending=true"
        in lines
    )
    waiting = sorted((kate.veraid_id, liam.veraid_id))
    assert f"  2 requests are waiting for their match, from {waiting[0]} and {waiting[1]}." in lines
    assert "  Over the pair's whole life: 0 matches and 0 requests expired unmatched." in lines
    assert "Pending activities: 1" in lines
    [activity] = [line for line in lines if line.startswith("  emit_service_message (id ")]
    assert ", attempt " in activity
    [failure] = [line for line in lines if line.startswith("    last failure: ")]
    assert failure.startswith(f"    last failure: SinkRejectedEvent: Sink answered HTTP {REFUSED}")
    assert as_json["state"]["pending_requesters"] == waiting
    [pending] = as_json["pendingActivities"]
    assert pending["activityType"] == "emit_service_message"
    assert pending["lastFailure"].startswith("SinkRejectedEvent: ")
    assert pending["retriedUntil"] is not None


async def failing_activity(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait until the workflow has a pending activity that failed at least once."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            description = await handle.describe()
            activities = description.raw_description.pending_activities
            if activities and activities[0].HasField("last_failure"):
                return
            await asyncio.sleep(0.2)


async def test_describe_of_an_unknown_workflow_says_so(stack: AdminStack) -> None:
    ran = await admin(stack.env, "describe", "no-such-workflow:x")

    assert ran.status == 1
    assert ran.stdout.strip() == "No workflow has id no-such-workflow:x"
