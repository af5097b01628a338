"""Egress outages mid-load: the sink refusing (4xx), failing (5xx), gone, then back; the
Pub/Sub emulator stopped and started while replies wait to be published.

Every reply of an accepted request must reach its recipient exactly once: the egress keeps
retrying under the same event id (``workflows.replies``), whatever the failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.chaos_stack import drive
from benchmarks.replies import ReplyRecorder
from infra.services import PubSubEmulator, free_port
from infra.sink import ReceivedEvent
from tests.conftest import require
from tests.fault_stack import (
    StartFaultStack,
    assert_exactly_once,
    delivery_errors,
    fault_stack_fixture,
    until,
)

__all__ = ["fault_stack_fixture"]  # the start_fault_stack fixture

pytestmark = pytest.mark.integration

PHASE_SECONDS = 2.0
# What the egress calls a sink's 4xx and 5xx answers; a closed port is anything else.
SINK_ANSWERS = {"SinkRejectedEvent", "SinkUnavailable"}


async def test_sink_refusing_failing_then_down_then_back_delivers_everything_once(
    start_fault_stack: StartFaultStack,
) -> None:
    # A wave of requests per phase, so that each phase meets first attempts, not only
    # retries already backing off.
    run = await start_fault_stack(per_module=1, waves=3)
    sink, faults = run.stack.sink, run.stack.sink.faults
    driving = [asyncio.create_task(drive(run.sender(), run.waves[0]))]
    await until(lambda: bool(run.recorder.events), 30, "a first reply")
    delivered_before = len(run.recorder.events)
    faults.status = 400
    driving.append(asyncio.create_task(drive(run.sender(), run.waves[1])))
    await until(lambda: faults.answered.get(400, 0) > 0, 20, "a reply refused with 400")
    await asyncio.sleep(PHASE_SECONDS)
    faults.status = 503
    await until(lambda: faults.answered.get(503, 0) > 0, 30, "a reply failed with 503")
    await asyncio.sleep(PHASE_SECONDS)
    await sink.stop()  # the port now refuses connections
    faults.status = None
    driving.append(asyncio.create_task(drive(run.sender(), run.waves[2])))
    await until(
        lambda: bool(set(delivery_errors(run.stack)) - SINK_ANSWERS), 30, "a connection failure"
    )
    await asyncio.sleep(PHASE_SECONDS)
    await sink.start()
    await asyncio.gather(*driving)
    result = await run.finish()

    assert_exactly_once(result)
    assert delivered_before < result.expected
    assert set(delivery_errors(run.stack)) >= SINK_ANSWERS  # 4xx and 5xx were both met


# --- Pub/Sub ---------------------------------------------------------------------------------

PROJECT = "letro-faults"


class Doorway:
    """A TCP forwarder between the worker and the emulator, which can be shut.

    The emulator keeps its topics in memory: restarted, it has none, and a message published
    to a topic without a subscription is dropped. The door stays shut while the emulator is
    down and until the topic and subscription exist again, as they always do in production.
    """

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self.open = True
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        self.shut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def shut(self) -> None:
        self.open = False
        for writer in list(self._connections):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self._target
            )
        except OSError:
            writer.close()
            return
        self._connections.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        self._connections.discard(writer)
        writer.close()


@dataclass
class Outgoing:
    """The worker's outgoing topic, and our pull subscription on it."""

    emulator: PubSubEmulator
    topic: str
    subscription: str

    def create(self) -> None:
        from google.cloud import pubsub_v1

        with _emulator_env(self.emulator):
            publisher = pubsub_v1.PublisherClient()
            subscriber = pubsub_v1.SubscriberClient()
            publisher.create_topic(name=self.topic)
            subscriber.create_subscription(name=self.subscription, topic=self.topic)
            subscriber.close()

    async def pull_into(self, recorder: ReplyRecorder) -> None:
        """Pull, acknowledge and record every message, until cancelled."""
        while True:
            try:
                messages = await asyncio.to_thread(self._pull)
            except Exception:  # the emulator is down or restarting: try again
                await asyncio.sleep(0.2)
                continue
            for message in messages:
                await recorder.add(_received(message))

    def _pull(self) -> list[Any]:
        from google.cloud import pubsub_v1

        with _emulator_env(self.emulator):
            subscriber = pubsub_v1.SubscriberClient()
            try:
                # No retries of its own: a pull stuck retrying would hold up the test's end.
                response = subscriber.pull(
                    subscription=self.subscription, max_messages=50, timeout=2, retry=None
                )
                if response.received_messages:
                    subscriber.acknowledge(
                        subscription=self.subscription,
                        ack_ids=[m.ack_id for m in response.received_messages],
                    )
                return [m.message for m in response.received_messages]
            finally:
                subscriber.close()


@contextlib.contextmanager
def _emulator_env(emulator: PubSubEmulator) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
        yield


def _received(message: Any) -> ReceivedEvent:
    attributes = message.attributes
    return ReceivedEvent(
        event_id=attributes["id"],
        event_type=attributes["type"],
        source=attributes["source"],
        subject=attributes["subject"],
        content_type=attributes["datacontenttype"],
        data=bytes(message.data),
        expiry=attributes.get("expiry"),
        received_at=time.monotonic(),
    )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[PubSubEmulator]:
    """This test's own emulator: it is stopped mid-test, so not the session's."""
    require(PubSubEmulator.is_installed(), "Google Pub/Sub emulator is not installed")
    server = PubSubEmulator(tmp_path / "pubsub", port=free_port())
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


async def test_pubsub_emulator_stopped_and_started_during_egress_loses_nothing(
    start_fault_stack: StartFaultStack, emulator: PubSubEmulator
) -> None:
    outgoing = Outgoing(
        emulator,
        f"projects/{PROJECT}/topics/awala-outgoing",
        f"projects/{PROJECT}/subscriptions/outgoing-check",
    )
    await asyncio.to_thread(outgoing.create)
    door = Doorway(emulator.port)
    await door.start()
    async with AsyncExitStack() as exits:
        exits.push_async_callback(door.close)
        env = {
            "CE_TRANSPORT": "google-pubsub",
            "CE_GPUBSUB_TOPIC": outgoing.topic,
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{door.port}",
            "GOOGLE_CLOUD_PROJECT": PROJECT,
        }
        run = await start_fault_stack(per_module=1, env=env)
        # Stopped before the door shuts: a worker that cannot flush its publisher takes
        # its whole stop timeout to exit.
        exits.callback(run.stack.stop)
        puller = asyncio.create_task(outgoing.pull_into(run.recorder))
        exits.push_async_callback(_cancel, puller)
        # The emulator goes down before any reply, so none is lost inside it (it keeps
        # messages in memory): every reply is published while it is down, or after.
        door.shut()
        await asyncio.to_thread(emulator.stop)
        await drive(run.sender(pubsub=True), run.flights)
        # Every reply is now being published (or retried) while nothing can take it.
        await asyncio.sleep(PHASE_SECONDS * 2)
        assert run.recorder.events == []
        await asyncio.to_thread(emulator.start)
        await asyncio.to_thread(outgoing.create)
        door.open = True
        result = await run.finish()

    assert_exactly_once(result)
