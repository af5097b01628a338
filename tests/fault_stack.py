"""The fault tests' stack: their own Temporal, mongod, worker, ingress and sink, per test.

A test module imports ``fault_stack_fixture`` to use the ``start_fault_stack`` fixture.

A fault test kills or cuts off a component, so it must not share the session's stack with
other tests. ``start_fault_stack`` makes the load first (every module's exchanges, so the
modules know which DNS names and accounts to serve), starts the modules' own servers
(development Authority, DNS and HTTPS servers), then the stack configured for them
(``benchmarks.chaos_stack``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.chaos_stack import (
    MODULE_NAMES,
    Flight,
    RestartableStack,
    Sender,
    Tally,
    await_replies,
    make_modules,
    modules_env,
    open_sender,
    quiesce,
    start_restartable_stack,
    tally,
)
from benchmarks.exchanges.workload import Module
from benchmarks.replies import ReplyRecorder
from infra.services import MongoDB, ServiceUnavailable, TemporalDevServer, free_port
from infra.sink import SinkServer
from tests.conftest import require

# How long a test waits for every reply once the fault is over, and then for duplicates.
QUIESCE_SECONDS = 60.0
GRACE_SECONDS = 2.0
# The sender gives up on a message after this long (a test fails well before).
SEND_SECONDS = 90.0


def require_services() -> None:
    """Temporal and mongod must be installed (on CI their absence fails the test)."""
    for service in (TemporalDevServer, MongoDB):
        try:
            service.executable()
        except ServiceUnavailable as error:
            require(False, str(error))


@dataclass
class FaultRun:
    """One test's stack, its load's modules, and the recorder the sink feeds."""

    stack: RestartableStack
    modules: list[Module]
    recorder: ReplyRecorder
    exits: AsyncExitStack
    waves: list[list[Flight]]

    @property
    def flights(self) -> list[Flight]:
        return [flight for wave in self.waves for flight in wave]

    def sender(self, urls: Sequence[str] | None = None, *, pubsub: bool = False) -> Sender:
        return open_sender(self.exits, urls or self.stack.ingress_urls, SEND_SECONDS, pubsub=pubsub)

    async def finish(self) -> Tally:
        await quiesce(self.flights, time.monotonic() + QUIESCE_SECONDS, GRACE_SECONDS)
        return tally(self.flights, self.modules, self.recorder)


StartFaultStack = Callable[..., Awaitable[FaultRun]]


@pytest.fixture(name="start_fault_stack")
async def fault_stack_fixture(tmp_path: Path) -> AsyncIterator[StartFaultStack]:
    """``await start_fault_stack(per_module=2, waves=2, names=..., env=..., ingresses=1)``:
    ``waves`` loads of ``per_module`` exchanges of each module named, and the stack."""
    require_services()
    async with AsyncExitStack() as exits:

        async def start(
            *,
            per_module: int = 2,
            waves: int = 1,
            names: Sequence[str] = MODULE_NAMES,
            env: Mapping[str, str] | None = None,
            ingresses: int = 1,
            sink_status: int | None = None,
        ) -> FaultRun:
            modules = make_modules(names)
            recorder = ReplyRecorder()
            run_id = uuid.uuid4().hex[:8]
            loads = [
                [
                    exchange
                    for module in modules
                    for exchange in module.make(run_id, f"w{w}", per_module)
                ]
                for w in range(waves)
            ]
            for module in modules:
                await module.start(exits, tmp_path)
            sink = SinkServer(recorder, free_port())
            sink.faults.status = sink_status
            await sink.start()
            exits.push_async_callback(sink.stop)
            stack = await start_restartable_stack(
                exits,
                tmp_path,
                sink,
                {**modules_env(modules), **(env or {})},
                ingresses=ingresses,
            )
            return FaultRun(
                stack, modules, recorder, exits, [await_replies(load, recorder) for load in loads]
            )

        yield start


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail the test, saying ``what``, if it never does."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def assert_exactly_once(result: Tally) -> None:
    """Every accepted request had its effect once: nothing lost, nothing doubled."""
    assert result.refused == 0, "the sender must get every message accepted eventually"
    assert result.lost_by_module == {}, f"lost: {result.summary}"
    assert result.duplicated_by_module == {}, f"duplicated: {result.summary}"
    assert result.unexpected == {}, "messages no request was owed"
    assert result.wrong == 0
    assert result.ids_per_recipient == result.owed_per_recipient
    assert result.delivered == result.expected > 0


def delivery_errors(stack: RestartableStack) -> Counter[str]:
    """The errors of the worker's failed delivery attempts, from its log lines."""
    errors: Counter[str] = Counter()
    for line in stack.log_text("worker").splitlines():
        if "Service message delivery attempt failed" not in line:
            continue
        with contextlib.suppress(ValueError):
            errors[str(json.loads(line).get("error"))] += 1
    return errors
