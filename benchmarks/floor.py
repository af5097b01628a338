"""The floor: the least a pair can cost Temporal -- two signal-with-starts, no activities.

The benchmark compares the pairing rate with the rate at which the same Temporal server
completes this workflow, so the figure says how much our own work adds to what Temporal
itself needs. Its worker runs as a separate process, like the real worker:
``python -m benchmarks.floor --address 127.0.0.1:7233 --task-queue benchmark-floor``.

Each completed pair is reported on the worker's standard output as
``completed <workflow id> <unix time>``, the moment the workflow finished, so the benchmark
learns when pairs are done without querying Temporal (a visibility query every fraction of
a second would take the SQLite connection away from the very work being measured).

At its top this module imports nothing but temporalio, so the workflow sandbox re-imports
little; the worker's settings are imported where the worker is made.
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

FLOOR_WORKFLOW = "BenchmarkFloor"
FLOOR_SIGNAL = "request"
READY_LINE = "Floor worker started"
COMPLETED = "completed"
REQUESTS_PER_PAIR = 2


@workflow.defn(name=FLOOR_WORKFLOW)
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
    # Here, not at the top: the sandbox would re-import all of worker.py for each run.
    from worker import TASK_POLLERS

    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # worker.py's pollers, and otherwise default options, as worker.py uses: the floor must be
    # tuned neither more nor less than we are, or the ratio to it would measure the tuning.
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[BenchmarkFloor],
        workflow_task_poller_behavior=TASK_POLLERS,
    ):
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
