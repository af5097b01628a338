"""The floor: the least a pair can cost Temporal -- two signal-with-starts, no activities.

The benchmark compares the pairing rate with the rate at which the same Temporal server
completes this workflow, so the figure says how much our own work adds to what Temporal
itself needs. Its worker runs as a separate process, like the real worker:
``python -m benchmarks.floor --address 127.0.0.1:7233 --task-queue benchmark-floor``.

Each completed pair is reported on the worker's standard output as
``completed <workflow id> <unix time>``, the moment the workflow finished, so the benchmark
learns when pairs are done without querying Temporal (a visibility query every fraction of
a second would take the SQLite connection away from the very work being measured).

The floor runs as our pair workflows do (outside the sandbox, or in it if they go back), and
its worker polls and collects garbage as ours does: a floor tuned more or less than we are
would make the ratio to it measure the tuning. The worker's settings are imported where the
worker is made, so the benchmark, which imports this module for its names, does not load
the whole worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from workflows.pairing import SANDBOXED

FLOOR_WORKFLOW = "BenchmarkFloor"
FLOOR_SIGNAL = "request"
READY_LINE = "Floor worker started"
COMPLETED = "completed"
REQUESTS_PER_PAIR = 2


@workflow.defn(name=FLOOR_WORKFLOW, sandboxed=SANDBOXED)
class BenchmarkFloor:
    """Waits for both requests of a pair, then completes: no activities, no timers."""

    def __init__(self) -> None:
        self._received = 0

    @workflow.signal(name=FLOOR_SIGNAL)
    def request(self, _requester: str) -> None:
        self._received += 1

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self._received >= REQUESTS_PER_PAIR)
        if not workflow.unsafe.is_replaying():
            _report_completion(workflow.info().workflow_id)
        return self._received


def _report_completion(workflow_id: str) -> None:
    # A side effect in workflow code is harmless here: it only measures, nothing reads it
    # back. One os.write per line, because workflows run on several threads and print()
    # writes the text and the newline separately, so lines could interleave.
    with workflow.unsafe.sandbox_unrestricted():
        line = f"{COMPLETED} {workflow_id} {time.time():.6f}\n"
        os.write(sys.stdout.fileno(), line.encode())


def parse_completion(line: str) -> tuple[str, float] | None:
    """``(workflow id, unix time)`` from one line of the floor worker's output, if it is one."""
    parts = line.split()
    if len(parts) != 3 or parts[0] != COMPLETED:
        return None
    try:
        return parts[1], float(parts[2])
    except ValueError:
        return None


async def serve(address: str, task_queue: str) -> None:
    from worker import TASK_POLLERS, tune_garbage_collector

    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # worker.py's pollers and garbage collection, and otherwise default options, as
    # worker.py uses (see the module's docstring).
    floor_worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[BenchmarkFloor],
        workflow_task_poller_behavior=TASK_POLLERS,
    )
    tune_garbage_collector()
    async with floor_worker:
        # The parent waits for this line in the log before it sends anything.
        print(READY_LINE, flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the benchmark's floor workflow worker.")
    parser.add_argument("--address", required=True, help="Temporal frontend, host:port")
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
