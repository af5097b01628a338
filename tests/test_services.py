"""The backing services start for real on loopback, work, keep their data and stop."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from temporalio.api.enums.v1 import NamespaceState
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus

from infra.services import (
    LOOPBACK,
    MongoDB,
    PubSubEmulator,
    ServiceUnavailable,
    TemporalDevServer,
    free_port,
)
from tests.conftest import require

integration = pytest.mark.integration


# --------------------------------------------------------------------------------------------
# Plumbing that needs no service


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()

    with socket.socket() as sock:
        sock.bind((LOOPBACK, port))


def test_stop_without_start_is_a_no_op(tmp_path: Path) -> None:
    service = MongoDB(tmp_path, port=free_port())

    service.stop()
    service.stop()


def test_missing_pubsub_emulator_is_reported_as_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_BIN", str(tmp_path / "no-such-emulator"))
    emulator = PubSubEmulator(tmp_path, port=free_port())

    assert not PubSubEmulator.is_installed()
    with pytest.raises(ServiceUnavailable):
        emulator.start()
    emulator.stop()  # safe after a failed start


def test_port_in_use_is_refused_before_spawning(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        service = MongoDB(tmp_path, port=squatter.getsockname()[1])

        with pytest.raises(RuntimeError, match="already in use"):
            service.start()

    assert not service.log_file.exists()


# --------------------------------------------------------------------------------------------
# Temporal


@integration
def test_temporal_dev_server_serves_namespace_and_persists(tmp_path: Path) -> None:
    port, ui_port = free_port(), free_port()

    with TemporalDevServer(tmp_path, port=port, ui_port=ui_port, namespace="letro-test") as server:
        assert server.address == f"127.0.0.1:{port}"
        state = asyncio.run(_namespace_state(server.address, "letro-test"))
        asyncio.run(_start_idle_workflow(server.address, "letro-test", "persisted-wf"))
        assert _http_status(server.ui_url) == 200

    assert state == NamespaceState.NAMESPACE_STATE_REGISTERED
    assert server.log_file == tmp_path / "temporal.log"
    assert server.log_file.exists()

    with TemporalDevServer(tmp_path, port=port, ui_port=ui_port, namespace="letro-test") as server:
        status = asyncio.run(_workflow_status(server.address, "letro-test", "persisted-wf"))

    assert status == WorkflowExecutionStatus.RUNNING


async def _namespace_state(address: str, namespace: str) -> NamespaceState.ValueType:
    client = await Client.connect(address, namespace=namespace)
    response = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    return response.namespace_info.state


async def _start_idle_workflow(address: str, namespace: str, workflow_id: str) -> None:
    # No worker polls this task queue: the execution just sits in the database.
    client = await Client.connect(address, namespace=namespace)
    await client.start_workflow(
        "NoSuchWorkflow",
        id=workflow_id,
        task_queue="nobody-listens",
        execution_timeout=timedelta(hours=1),
    )


async def _workflow_status(
    address: str, namespace: str, workflow_id: str
) -> WorkflowExecutionStatus | None:
    client = await Client.connect(address, namespace=namespace)
    return (await client.get_workflow_handle(workflow_id).describe()).status


def _http_status(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        status: int = response.status
    return status


# --------------------------------------------------------------------------------------------
# MongoDB


@pytest.fixture
def mongo_port() -> int:
    return free_port()


@integration
def test_mongodb_reads_writes_and_runs_transactions(tmp_path: Path, mongo_port: int) -> None:
    with MongoDB(tmp_path, port=mongo_port) as mongo, _mongo_client(mongo.uri) as client:
        collection = client.letro.things
        collection.insert_one({"_id": "plain", "n": 1})
        with client.start_session() as session, session.start_transaction():
            collection.insert_one({"_id": "in-transaction", "n": 2}, session=session)
        with client.start_session() as session:
            session.start_transaction()
            collection.insert_one({"_id": "aborted", "n": 3}, session=session)
            session.abort_transaction()

        assert sorted(doc["_id"] for doc in collection.find()) == ["in-transaction", "plain"]
        assert "_infra_readiness" not in client.list_database_names()


@integration
def test_mongodb_restart_keeps_data_even_on_another_port(tmp_path: Path, mongo_port: int) -> None:
    with MongoDB(tmp_path, port=mongo_port) as mongo, _mongo_client(mongo.uri) as client:
        client.letro.things.insert_one({"_id": "survivor"})

    # Same port: the stored replica-set config still names this node.
    with MongoDB(tmp_path, port=mongo_port) as mongo, _mongo_client(mongo.uri) as client:
        assert client.letro.things.find_one({"_id": "survivor"}) == {"_id": "survivor"}

    # Another port: the stored config names a host that is no longer us.
    with MongoDB(tmp_path, port=free_port()) as mongo, _mongo_client(mongo.uri) as client:
        assert client.letro.things.find_one({"_id": "survivor"}) == {"_id": "survivor"}
        with client.start_session() as session, session.start_transaction():
            client.letro.things.insert_one({"_id": "after-move"}, session=session)
        assert client.letro.things.count_documents({}) == 2


@integration
def test_mongodb_dying_at_start_up_reports_its_log(tmp_path: Path, mongo_port: int) -> None:
    mongo = MongoDB(tmp_path, port=mongo_port, cache_size_gb=-1)

    with pytest.raises(RuntimeError, match="exited with code") as failure:
        mongo.start(timeout=30)

    assert "cacheSizeGB must be greater than" in str(failure.value)  # mongod's own complaint
    mongo.stop()


def _mongo_client(uri: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(uri, serverSelectionTimeoutMS=5000)


# --------------------------------------------------------------------------------------------
# Pub/Sub emulator


@pytest.fixture
def pubsub_emulator(tmp_path: Path) -> Iterator[PubSubEmulator]:
    require(
        PubSubEmulator.is_installed(),
        "Pub/Sub emulator (Cloud SDK component) or Java is not installed",
    )
    with PubSubEmulator(tmp_path, port=free_port()) as emulator:
        yield emulator


@integration
def test_pubsub_emulator_delivers_published_messages(
    pubsub_emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.host)
    from google.cloud import pubsub_v1  # after the env var: clients read it when built

    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path("letro-test", "events")
    publisher.create_topic(name=topic)
    with pubsub_v1.SubscriberClient() as subscriber:
        subscription = subscriber.subscription_path("letro-test", "events-sub")
        subscriber.create_subscription(name=subscription, topic=topic)

        publisher.publish(topic, b"hello", kind="greeting").result(timeout=10)
        received = _pull_one(subscriber, subscription)
        subscriber.acknowledge(subscription=subscription, ack_ids=[received.ack_id])

    assert received.message.data == b"hello"
    assert dict(received.message.attributes) == {"kind": "greeting"}


def _pull_one(subscriber: Any, subscription: str) -> Any:
    # A pull may legitimately come back empty right after publishing; retry briefly.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response = subscriber.pull(subscription=subscription, max_messages=1, timeout=5)
        if response.received_messages:
            return response.received_messages[0]
    raise AssertionError("no message pulled from the emulator")
