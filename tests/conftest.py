"""The test session's real stack: Temporal dev server, mongod, Pub/Sub emulator, and our processes.

Services are started once per session on free ports under a temporary folder. A test
that needs a service the machine lacks is skipped locally but fails on CI (CI=true).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from pymongo import AsyncMongoClient
from temporalio.client import Client

from infra.dev_authority import DevAuthority, DevAuthorityServer
from infra.processes import ChildProcess, http_answers, log_contains, python_module, python_script
from infra.services import MongoDB, PubSubEmulator, TemporalDevServer, free_port
from infra.sink import EventRecorder, create_sink_app

ON_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip when a service is missing locally; on CI a missing service is a failure."""
    if not condition:
        if ON_CI:
            pytest.fail(f"{reason} (CI=true: a missing service is a failure)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def temporal(stack_dir: Path) -> Iterator[TemporalDevServer]:
    server = TemporalDevServer(stack_dir / "temporal", port=free_port(), ui_port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongodb(stack_dir: Path) -> Iterator[MongoDB]:
    server = MongoDB(stack_dir / "mongodb", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pubsub(stack_dir: Path) -> Iterator[PubSubEmulator]:
    require(PubSubEmulator.is_installed(), "Google Pub/Sub emulator is not installed")
    emulator = PubSubEmulator(stack_dir / "pubsub", port=free_port())
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
async def temporal_client(temporal: TemporalDevServer) -> Client:
    return await Client.connect(temporal.address)


@pytest.fixture(scope="session")
async def mongo_client(mongodb: MongoDB) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb.uri)
    yield client
    await client.close()


@dataclass
class Sink:
    url: str
    recorder: EventRecorder


@pytest.fixture(scope="session")
async def sink() -> AsyncIterator[Sink]:
    recorder = EventRecorder()
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(create_sink_app(recorder), config, shutdown_trigger=stop.wait))
    yield Sink(url=f"http://127.0.0.1:{port}/", recorder=recorder)
    stop.set()
    await task


@pytest.fixture(scope="session")
def base_env(temporal: TemporalDevServer, mongodb: MongoDB) -> dict[str, str]:
    return {
        "VERSION": "test",
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "json",
        "TEMPORAL_ADDRESS": temporal.address,
        "MONGODB_URI": mongodb.uri,
        "MONGODB_DB": "letro_test",
    }


@dataclass
class Ingress:
    url: str
    process: ChildProcess


@dataclass
class Worker:
    process: ChildProcess
    task_queue: str
    log_file: Path


StartIngress = Callable[..., Ingress]
StartWorker = Callable[..., Worker]


@pytest.fixture(scope="session")
def start_ingress(base_env: dict[str, str], stack_dir: Path) -> Iterator[StartIngress]:
    started: list[ChildProcess] = []

    def start(**env: str) -> Ingress:
        port = free_port()
        log_file = stack_dir / f"ingress-{port}.log"
        process = ChildProcess(
            "ingress",
            python_module("ingress"),
            env={**base_env, "HOST": "127.0.0.1", "PORT": str(port), **env},
            log_file=log_file,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}/"
        process.start(ready=http_answers(url))
        return Ingress(url=url, process=process)

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def start_worker(base_env: dict[str, str], stack_dir: Path) -> Iterator[StartWorker]:
    started: list[ChildProcess] = []

    def start(task_queue: str, **env: str) -> Worker:
        log_file = stack_dir / f"worker-{task_queue}-{len(started)}.log"
        process = ChildProcess(
            "worker",
            python_script("worker.py"),
            env={**base_env, "TEMPORAL_TASK_QUEUE": task_queue, **env},
            log_file=log_file,
        )
        started.append(process)
        process.start(ready=log_contains(log_file, "Worker started"))
        return Worker(process=process, task_queue=task_queue, log_file=log_file)

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def http_worker(start_worker: StartWorker, sink: Sink) -> Worker:
    """The session's worker on the default transport, emitting to the recording sink."""
    return start_worker("letro-http", K_SINK=sink.url)


@pytest.fixture(scope="session")
def ingress(start_ingress: StartIngress, http_worker: Worker) -> Ingress:
    return start_ingress(TEMPORAL_TASK_QUEUE=http_worker.task_queue)


DEV_AUTHORITY_TOKEN = "test-authority-token"


@pytest.fixture(scope="session")
async def dev_authority() -> AsyncIterator[DevAuthorityServer]:
    """The development VeraId Authority, in this process so tests can inject faults."""
    domains = ["applepie.rocks", "cuppa.fans", "guarapo.cafe", "nautilus.ink"]
    server = DevAuthorityServer(DevAuthority(domains, DEV_AUTHORITY_TOKEN), free_port())
    await server.start()
    yield server
    await server.stop()
