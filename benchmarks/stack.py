"""The stack under test: started here on loopback in a scratch folder, or one already running.

Everything started is registered on the caller's exit stack *before* it starts, so an
error or Ctrl-C half-way through still stops whatever did come up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from hypercorn.asyncio import serve
from hypercorn.config import Config
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from benchmarks.cpu import pids_with_argument
from infra.processes import ChildProcess, http_answers, python_module, python_script
from infra.services import LOOPBACK, MongoDB, TemporalDevServer, free_port
from infra.sink import EventRecorder, create_sink_app

LETRO_TASK_QUEUE = "letro-benchmark"
_READY_TIMEOUT = 60.0
_POLLER_CHECK_INTERVAL = 0.2


@dataclass
class Stack:
    ingress_url: str
    temporal_address: str
    work_dir: Path
    # Process ids per component, for the CPU figures; empty for a stack started elsewhere.
    components: dict[str, list[int]] = field(default_factory=dict)
    # Where the floor with I/O stores and sends; unknown for a stack started elsewhere, which
    # measures the bare floor only.
    mongodb_uri: str = ""
    sink_url: str = ""

    @property
    def has_io_floor(self) -> bool:
        return bool(self.mongodb_uri and self.sink_url)


async def serve_sink(exits: AsyncExitStack, recorder: EventRecorder, port: int) -> str:
    """Serve the recording sink in this process (as the tests do); return its URL."""
    config = Config()
    config.bind = [f"{LOOPBACK}:{port}"]
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(create_sink_app(recorder), config, shutdown_trigger=stop.wait))

    async def shut_down() -> None:
        stop.set()
        await task

    exits.push_async_callback(shut_down)
    return f"http://{LOOPBACK}:{port}/"


async def start_local_stack(
    exits: AsyncExitStack,
    work_dir: Path,
    sink_url: str,
    extra_env: Mapping[str, str] | None = None,
    workers: int = 1,
) -> Stack:
    """Temporal dev server (SQLite file, WAL), mongod, ``workers`` workers and one ingress."""
    temporal = TemporalDevServer(work_dir / "temporal", port=free_port(), ui_port=free_port())
    exits.callback(temporal.stop)
    temporal.start()
    mongodb = MongoDB(work_dir / "mongodb", port=free_port())
    exits.callback(mongodb.stop)
    mongodb.start()

    env = {**_server_env(temporal.address, mongodb.uri, sink_url), **(extra_env or {})}
    worker_processes = []
    for index in range(workers):
        worker = ChildProcess(
            "worker", python_script("worker.py"), env=env, log_file=work_dir / f"worker-{index}.log"
        )
        exits.callback(worker.stop)
        worker.start()
        worker_processes.append(worker)
        await wait_for_poller(temporal.address, LETRO_TASK_QUEUE, worker)

    port = free_port()
    ingress = ChildProcess(
        "ingress",
        python_module("ingress"),
        env={**env, "HOST": LOOPBACK, "PORT": str(port)},
        log_file=work_dir / "ingress.log",
    )
    exits.callback(ingress.stop)
    url = f"http://{LOOPBACK}:{port}/"
    # Blocks the event loop while it waits, which is harmless: nothing runs yet.
    ingress.start(ready=http_answers(url), timeout=_READY_TIMEOUT)

    components = {
        "temporal": pids_with_argument(str(temporal.data_dir)),
        "mongod": pids_with_argument(str(mongodb.dbpath)),
        "worker": [worker.pid for worker in worker_processes],
        "ingress": [ingress.pid],
    }
    return Stack(url, temporal.address, work_dir, components, mongodb.uri, sink_url)


def _server_env(temporal_address: str, mongodb_uri: str, sink_url: str) -> dict[str, str]:
    # As the tests' environment, but logging only warnings: at info level each request
    # costs the ingress and the worker several JSON lines, which would be measured too.
    return {
        "VERSION": "benchmark",
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
        "CE_TRANSPORT": "ce-http-binary",
        "K_SINK": sink_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_NAMESPACE": "default",
        "TEMPORAL_TASK_QUEUE": LETRO_TASK_QUEUE,
        "MONGODB_URI": mongodb_uri,
        "MONGODB_DB": "letro_benchmark",
    }


async def start_floor_worker(exits: AsyncExitStack, stack: Stack, task_queue: str) -> ChildProcess:
    """The floors' worker; it runs the floor with I/O too when the stack says where to."""
    io = ["--mongodb-uri", stack.mongodb_uri, "--sink-url", stack.sink_url]
    worker = ChildProcess(
        "floor-worker",
        python_module(
            "benchmarks.floor",
            *("--address", stack.temporal_address, "--task-queue", task_queue),
            *(io if stack.has_io_floor else []),
        ),
        env={},
        log_file=stack.work_dir / "floor-worker.log",
    )
    exits.callback(worker.stop)
    worker.start()
    await wait_for_poller(stack.temporal_address, task_queue, worker)
    return worker


async def wait_for_poller(address: str, task_queue: str, process: ChildProcess) -> None:
    """Wait until ``process`` polls ``task_queue``: only then is the worker really up.

    The workers log at warning level here, so there is no start-up line to wait for;
    Temporal's own list of pollers names each by its client identity, ``<pid>@<host>``.
    """
    client = await Client.connect(address)
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = time.monotonic() + _READY_TIMEOUT
    while True:
        if not process.is_running():
            raise RuntimeError(f"{process.name} exited at start-up; see {process.log_file}")
        response = await client.workflow_service.describe_task_queue(request)
        if any(poller.identity.startswith(f"{process.pid}@") for poller in response.pollers):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.name} did not poll {task_queue!r} in time")
        await asyncio.sleep(_POLLER_CHECK_INTERVAL)


def is_loopback(host: str | None) -> bool:
    return host in (LOOPBACK, "localhost")
