"""The floors: the least a pair can cost Temporal, bare and with the protocol's I/O.

The benchmark compares the pairing rate with the rate at which the same Temporal server
completes these workflows, so the figures say how much our own work adds to what Temporal
itself needs:

- ``BenchmarkFloor``: two signal-with-starts and nothing else, no activities;
- ``BenchmarkFloorWithIO``: the same, plus the least I/O a pair needs by the protocol and
  the design (pending requests in MongoDB, replies over HTTP, every side effect a local
  activity): one MongoDB upsert when the first request waits alone, and at the match one
  deletion and two HTTP POSTs of CloudEvents to the sink, concurrently. Nothing else: no
  search attributes, no deduplication, no read-back, no linger.

Their worker runs as a separate process, like the real worker:
``python -m benchmarks.floor --address 127.0.0.1:7233 --task-queue benchmark-floor``;
with ``--mongodb-uri`` and ``--sink-url`` it runs the floor with I/O too.

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
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from workflows.pairing import SANDBOXED

with workflow.unsafe.imports_passed_through():
    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.collection import AsyncCollection

    from activities.sinks import HttpBinarySink
    from awala.service_messages import OutgoingServiceMessage

FLOOR_WORKFLOW = "BenchmarkFloor"
IO_FLOOR_WORKFLOW = "BenchmarkFloorWithIO"
FLOOR_SIGNAL = "request"
READY_LINE = "Floor worker started"
COMPLETED = "completed"
REQUESTS_PER_PAIR = 2
# What the floor with I/O sends the sink, two per pair; the benchmark counts them by it.
IO_FLOOR_CONTENT_TYPE = "application/vnd.letro.benchmark-floor"
IO_FLOOR_DATABASE = "benchmark_floor"
IO_FLOOR_COLLECTION = "waiting"
# As the pair workflows' local activities: quick, and retried until they succeed.
_IO_TIMEOUT = timedelta(seconds=10)


class _Pair:
    """Counts a pair's requests; the floors differ in what they do with them."""

    def __init__(self) -> None:
        self._received = 0

    @workflow.signal(name=FLOOR_SIGNAL)
    def request(self, _requester: str) -> None:
        self._received += 1

    def _both_in(self) -> bool:
        return self._received >= REQUESTS_PER_PAIR


@workflow.defn(name=FLOOR_WORKFLOW, sandboxed=SANDBOXED)
class BenchmarkFloor(_Pair):
    """Waits for both requests of a pair, then completes: no activities, no timers."""

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(self._both_in)
        _report_completion()
        return self._received


class FloorIO:
    """The floor's local activities: one MongoDB operation or three I/Os, nothing else."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]], sink: HttpBinarySink) -> None:
        self._collection = collection
        self._sink = sink

    @activity.defn(name="benchmark_floor_store")
    async def store(self, pair: str) -> None:
        await self._collection.update_one({"_id": pair}, {"$set": {"waiting": True}}, upsert=True)

    @activity.defn(name="benchmark_floor_conclude")
    async def conclude(self, pair: str) -> None:
        await self._collection.delete_many({"_id": pair})
        await asyncio.gather(*(self._post(pair, side) for side in range(REQUESTS_PER_PAIR)))

    async def _post(self, pair: str, side: int) -> None:
        # Through the worker's own HTTP sink, so a reply costs what ours cost to format and
        # send; a refused one raises and the activity is retried, as the worker's are.
        now = datetime.now(UTC)
        await self._sink.send(
            OutgoingServiceMessage(
                event_id=f"{pair}-{side}",
                sender_id="benchmark-floor",
                recipient_id=f"{pair}-side-{side}",
                content_type=IO_FLOOR_CONTENT_TYPE,
                content=b"match",
                creation_time=now,
                expiry_time=now + timedelta(days=1),
            )
        )


@workflow.defn(name=IO_FLOOR_WORKFLOW, sandboxed=SANDBOXED)
class BenchmarkFloorWithIO(_Pair):
    """Stores a request that waits alone; at the match, deletes it and sends both replies."""

    @workflow.run
    async def run(self) -> int:
        pair = workflow.info().workflow_id
        await workflow.wait_condition(lambda: self._received > 0)
        if not self._both_in():
            await workflow.execute_local_activity_method(
                FloorIO.store, pair, start_to_close_timeout=_IO_TIMEOUT
            )
            await workflow.wait_condition(self._both_in)
        await workflow.execute_local_activity_method(
            FloorIO.conclude, pair, start_to_close_timeout=_IO_TIMEOUT
        )
        _report_completion()
        return self._received


def _report_completion() -> None:
    # A side effect in workflow code is harmless here: it only measures, nothing reads it
    # back, and a replay does not repeat it. One os.write per line, because workflows run on
    # several threads and print() writes the text and the newline separately, so lines could
    # interleave.
    if workflow.unsafe.is_replaying():
        return
    with workflow.unsafe.sandbox_unrestricted():
        line = f"{COMPLETED} {workflow.info().workflow_id} {time.time():.6f}\n"
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


async def serve(
    address: str, task_queue: str, mongodb_uri: str | None = None, sink_url: str | None = None
) -> None:
    from worker import TASK_POLLERS, tune_garbage_collector

    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    workflows: list[type] = [BenchmarkFloor]
    activities: list[Any] = []
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    sink: HttpBinarySink | None = None
    if mongodb_uri and sink_url:
        mongo = AsyncMongoClient(mongodb_uri)
        sink = HttpBinarySink(sink_url)
        io = FloorIO(mongo[IO_FLOOR_DATABASE][IO_FLOOR_COLLECTION], sink)
        workflows.append(BenchmarkFloorWithIO)
        activities += [io.store, io.conclude]
    # worker.py's pollers and garbage collection, and otherwise default options, as
    # worker.py uses (see the module's docstring).
    floor_worker = Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activities,
        workflow_task_poller_behavior=TASK_POLLERS,
        activity_task_poller_behavior=TASK_POLLERS,
    )
    tune_garbage_collector()
    try:
        async with floor_worker:
            # The parent waits for this line in the log before it sends anything.
            print(READY_LINE, flush=True)
            await stop.wait()
    finally:
        if sink is not None:
            await sink.close()
        if mongo is not None:
            await mongo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the benchmark's floor workflow workers.")
    parser.add_argument("--address", required=True, help="Temporal frontend, host:port")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--mongodb-uri", help="with --sink-url: run the floor with I/O too")
    parser.add_argument("--sink-url", help="where the floor with I/O posts its replies")
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue, args.mongodb_uri, args.sink_url))


if __name__ == "__main__":
    main()
