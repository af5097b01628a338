"""The test session's real stack: Temporal dev server, mongod, Pub/Sub emulator, and our processes.

Services are started once per session on free ports under a temporary folder. A test
that needs a service the machine lacks is skipped locally but fails on CI (CI=true).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from pymongo import AsyncMongoClient
from temporalio.client import Client

from infra.agents import VeraidOrg, make_org
from infra.connparams_servers import LocalConnectionParamsServers, serve_connection_params_servers
from infra.dev_authority import DevAuthority, DevAuthorityServer
from infra.processes import ChildProcess, http_answers, log_contains, python_module, python_script
from infra.services import MongoDB, PubSubEmulator, TemporalDevServer, free_port
from infra.sink import EventRecorder, accepting, create_sink_app
from tests.relaynet import GeneratedParams, generate_connection_params

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


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for posting to the ingress; generous timeout for the shared cores."""
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


@dataclass
class Sink:
    url: str
    recorder: EventRecorder


@contextlib.asynccontextmanager
async def serve_sink(
    *, fail_first: int = 0, keep: int | None = None, refuse: Mapping[str, int] | None = None
) -> AsyncIterator[Sink]:
    """A recording sink on a free port of this process, for as long as the context lasts
    (``fail_first``, ``refuse``: see ``infra.sink.create_sink_app``)."""
    recorder = EventRecorder(keep=keep)
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    app = create_sink_app(recorder, fail_first=fail_first, refuse=refuse)
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        await accepting(port, 10)
        yield Sink(url=f"http://127.0.0.1:{port}/", recorder=recorder)
    finally:
        stop.set()
        await task


@pytest.fixture(scope="session")
async def sink() -> AsyncIterator[Sink]:
    async with serve_sink() as sink:
        yield sink


@pytest.fixture(scope="session")
def base_env(
    temporal: TemporalDevServer, mongodb: MongoDB, veraid_org: VeraidOrg
) -> dict[str, str]:
    return {
        "VERSION": "test",
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "json",
        "TEMPORAL_ADDRESS": temporal.address,
        "MONGODB_URI": mongodb.uri,
        "MONGODB_DB": "letro_test",
        # Every ingress verifies SignatureBundles against the session's organisation.
        "VERAID_TRUST_ANCHORS": veraid_org.trust_anchor_setting,
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
def veraid_org() -> VeraidOrg:
    """A mock VeraId organisation whose DNSSEC root the session's worker trusts."""
    return make_org()


@pytest.fixture(scope="session")
def http_worker(start_worker: StartWorker, sink: Sink) -> Worker:
    """The session's worker on the default transport, emitting to the recording sink."""
    return start_worker("letro-http", K_SINK=sink.url)


@pytest.fixture(scope="session")
def ingress(start_ingress: StartIngress, http_worker: Worker) -> Ingress:
    return start_ingress(TEMPORAL_TASK_QUEUE=http_worker.task_queue)


@pytest.fixture(scope="session")
def relaynet_params() -> GeneratedParams:
    """Connection parameters serialised by @relaycorp/relaynet-core (once per session)."""
    return generate_connection_params("pdc.example.com")


@dataclass
class ConnectionParamsServers(LocalConnectionParamsServers):
    """The local DNS and HTTPS servers, serving parameters relaynet-core made."""

    params: GeneratedParams


@pytest.fixture(scope="session")
async def connection_params_servers(
    stack_dir: Path, relaynet_params: GeneratedParams
) -> AsyncIterator[ConnectionParamsServers]:
    async with serve_connection_params_servers(stack_dir, relaynet_params.der) as servers:
        yield ConnectionParamsServers(servers.dns, servers.https, servers.ca, relaynet_params)


@dataclass
class Deployment:
    """An ingress and the worker behind it, on their own task queue."""

    ingress: Ingress
    worker: Worker
    # How the DNS server sees this worker's queries: "udp" (plain DNS) or "doh".
    dns_wire: str = "udp"

    def stop(self) -> None:
        """Stop both now, while the servers they talk to still run (else teardown races)."""
        self.ingress.process.stop()
        self.worker.process.stop()


# Short enough for the tests, long enough for a few retries (1 s, 2 s, 4 s backoff).
TEST_RETRY_SECONDS = 6


def _connection_params_deployment(
    name: str,
    resolver: str,
    start_worker: StartWorker,
    start_ingress: StartIngress,
    sink: Sink,
    servers: ConnectionParamsServers,
    *,
    allow_private_addresses: bool = True,
) -> Deployment:
    worker = start_worker(
        f"letro-connparams-{name}",
        K_SINK=sink.url,
        CONNECTION_PARAMS_RESOLVER=resolver,
        CONNECTION_PARAMS_CA_FILE=str(servers.ca.ca_file),
        # The test servers are all on loopback.
        CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES=str(allow_private_addresses).lower(),
    )
    ingress = start_ingress(
        TEMPORAL_TASK_QUEUE=worker.task_queue,
        CONNECTION_PARAMS_RETRY_SECONDS=str(TEST_RETRY_SECONDS),
    )
    return Deployment(ingress, worker, "doh" if resolver.startswith("doh:") else "udp")


@pytest.fixture(scope="session")
def dns_deployment(
    start_worker: StartWorker,
    start_ingress: StartIngress,
    sink: Sink,
    connection_params_servers: ConnectionParamsServers,
) -> Iterator[Deployment]:
    """A worker resolving with plain DNS (UDP, then TCP) against the test DNS server."""
    resolver = connection_params_servers.plain_dns_resolver
    deployment = _connection_params_deployment(
        "dns", resolver, start_worker, start_ingress, sink, connection_params_servers
    )
    yield deployment
    deployment.stop()


@pytest.fixture(scope="session")
def doh_deployment(
    start_worker: StartWorker,
    start_ingress: StartIngress,
    sink: Sink,
    connection_params_servers: ConnectionParamsServers,
) -> Iterator[Deployment]:
    """A worker resolving with DNS-over-HTTPS against the test DoH endpoint."""
    resolver = f"doh:{connection_params_servers.doh_url}"
    deployment = _connection_params_deployment(
        "doh", resolver, start_worker, start_ingress, sink, connection_params_servers
    )
    yield deployment
    deployment.stop()


@pytest.fixture(scope="session")
def public_only_deployment(
    start_worker: StartWorker,
    start_ingress: StartIngress,
    sink: Sink,
    connection_params_servers: ConnectionParamsServers,
) -> Iterator[Deployment]:
    """A worker as in production: fetches only from public addresses (plain DNS resolver)."""
    resolver = connection_params_servers.plain_dns_resolver
    deployment = _connection_params_deployment(
        "public-only",
        resolver,
        start_worker,
        start_ingress,
        sink,
        connection_params_servers,
        allow_private_addresses=False,
    )
    yield deployment
    deployment.stop()


DEV_AUTHORITY_TOKEN = "test-authority-token"


@pytest.fixture(scope="session")
async def dev_authority() -> AsyncIterator[DevAuthorityServer]:
    """The development VeraId Authority, in this process so tests can inject faults."""
    domains = ["applepie.rocks", "cuppa.fans", "guarapo.cafe", "nautilus.ink"]
    server = DevAuthorityServer(DevAuthority(domains, DEV_AUTHORITY_TOKEN), free_port())
    await server.start()
    yield server
    await server.stop()


StartAccountWorker = Callable[..., Worker]


@pytest.fixture(scope="session")
def start_account_worker(
    start_worker: StartWorker, sink: Sink, dev_authority: DevAuthorityServer
) -> StartAccountWorker:
    """Start a worker that creates accounts in the development Authority (``env`` adds to it)."""

    def start(task_queue: str, **env: str) -> Worker:
        return start_worker(
            task_queue,
            K_SINK=sink.url,
            VAUTH_API_URL=dev_authority.url,
            VAUTH_API_TOKEN=DEV_AUTHORITY_TOKEN,
            **env,
        )

    return start
