"""A real stack whose every component can be killed and restarted, and the load that counts.

Shared by the fault tests (``tests/test_faults_*.py``) and ``benchmarks.chaos``:

* :class:`RestartableStack` -- the Temporal dev server (SQLite file), mongod, the workers,
  the ingresses and the recording sink, each killable (SIGKILL, or the port closed) and
  restartable on the same port and data.
* :class:`Sender` -- posts each message as a broker does: under one parcel id, again and
  again, until the ingress answers 2xx (a 4xx is final), failing over between ingresses.
* :func:`drive` and :func:`tally` -- every module's exchanges in flight at once, then the
  count: each accepted request's replies must reach the sink exactly once (a redelivery
  under the same event id is fine; the same reply under two ids is a duplicate).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa

from awala.service_messages import INCOMING_SERVICE_MESSAGE_TYPE
from benchmarks.accounts import AccountCreation
from benchmarks.connection_params import ConnectionParamsRetrieval
from benchmarks.exchanges.workload import Exchange, Message, Module
from benchmarks.mixed import Authorisations, LegacyPairs, _Pairs
from benchmarks.pairing_protocols import VeraidPairing
from benchmarks.replies import ExpectedReply, ReplyRecorder
from benchmarks.stack import LETRO_TASK_QUEUE, wait_for_poller
from infra.agents import VeraidAgent, VeraidOrg, make_org, new_rsa_key
from infra.processes import ChildProcess, http_answers, python_module, python_script
from infra.services import LOOPBACK, MongoDB, TemporalDevServer, free_port
from infra.sink import SinkServer
from letro.contact_pairing import ContactPairingFailureReason, serialise_contact_pairing_failure
from letro.content_types import CONTACT_PAIRING_FAILURE, CONTACT_PAIRING_REQUEST

SERVER_ENDPOINT_ID = "0" + "c" * 64
_READY_TIMEOUT = 60.0
_HTTP_TIMEOUT = 10.0
# The broker's redelivery backoff: short, as the tests and the benchmark are bounded.
_RETRY_FIRST = 0.2
_RETRY_MAX = 1.0

# --------------------------------------------------------------------------------------------
# The load: every module of the server, and the refusals VeraId pairing sends


class VeraidPairs(_Pairs):
    """VeraId pairs of a given organisation (shared with the refusals' requesters)."""

    name = VeraidPairing.name
    title = VeraidPairing.title

    def __init__(self, protocol: VeraidPairing) -> None:
        self.protocol = protocol


class Refusals(Module):
    """VeraId pairing requests whose target is no VeraId id: each earns its requester one
    ``ContactPairingFailure`` from the refusal workflow, and nothing else."""

    name = "refusals"
    title = "VeraId pairing refusals"
    rate_unit: ClassVar[str] = "refusals/s"

    def __init__(self, org: VeraidOrg, keys: Sequence[rsa.RSAPrivateKey]) -> None:
        self._org = org
        self._keys = list(keys)

    @property
    def material(self) -> str:
        return "VeraId pairing requests for a bare domain (an invalid target)"

    def make(self, run_id: str, phase: str, count: int) -> list[Exchange]:
        return [self._exchange(f"{run_id}{phase}{index}", index) for index in range(count)]

    def _exchange(self, tag: str, index: int) -> Exchange:
        agent = VeraidAgent(self._org, f"refused{tag}", self._keys[index % len(self._keys)])
        # A bare domain is refused as INVALID_TARGET_VERAID; its own name keeps the failure
        # bytes unique, so two refusals to one endpoint are told apart.
        target = f"nobody{tag}.example"
        failure = serialise_contact_pairing_failure(
            target, ContactPairingFailureReason.INVALID_TARGET_VERAID
        )
        return Exchange(
            self.name,
            (Message(agent.endpoint_id, CONTACT_PAIRING_REQUEST, agent.pairing_request(target)),),
            (ExpectedReply(agent.endpoint_id, CONTACT_PAIRING_FAILURE, failure),),
        )

    def service_env(self) -> dict[str, str]:
        return {"VERAID_TRUST_ANCHORS": self._org.trust_anchor_setting}


MODULE_NAMES = (
    VeraidPairs.name,
    LegacyPairs.name,
    Authorisations.name,
    AccountCreation.name,
    ConnectionParamsRetrieval.name,
    Refusals.name,
)


def make_modules(names: Sequence[str] = MODULE_NAMES, endpoint_keys: int = 4) -> list[Module]:
    """The modules named, their users sharing ``endpoint_keys`` RSA keys (made here, in
    this thread: a process pool would fork a process that already runs threads)."""
    keys = [new_rsa_key() for _ in range(max(endpoint_keys, 2))]
    org = make_org("chaos.example")
    made: dict[str, Module] = {
        VeraidPairs.name: VeraidPairs(VeraidPairing(org, keys)),
        LegacyPairs.name: LegacyPairs(),
        Authorisations.name: Authorisations(keys),
        AccountCreation.name: AccountCreation(keys[:2]),
        ConnectionParamsRetrieval.name: ConnectionParamsRetrieval(),
        Refusals.name: Refusals(org, keys),
    }
    return [made[name] for name in names]


# --------------------------------------------------------------------------------------------
# The stack


def _server_env(temporal: str, mongodb: str, sink_url: str) -> dict[str, str]:
    return {
        "VERSION": "chaos",
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "json",
        "CE_TRANSPORT": "ce-http-binary",
        "K_SINK": sink_url,
        "TEMPORAL_ADDRESS": temporal,
        "TEMPORAL_NAMESPACE": "default",
        "TEMPORAL_TASK_QUEUE": LETRO_TASK_QUEUE,
        "MONGODB_URI": mongodb,
        "MONGODB_DB": "letro_chaos",
    }


@dataclass
class RestartableStack:
    """Every component on its own fixed port, killable and restartable on the same data.

    Built by :func:`start_restartable_stack`; the blocking starts run in threads so that
    the in-process sink keeps serving while a service comes back.
    """

    work_dir: Path
    temporal: TemporalDevServer
    mongodb: MongoDB
    sink: SinkServer
    env: dict[str, str]
    ingress_ports: list[int]
    workers: list[ChildProcess] = field(default_factory=list)
    ingresses: list[ChildProcess | None] = field(default_factory=list)
    _starts: Counter[str] = field(default_factory=Counter)

    @property
    def ingress_urls(self) -> list[str]:
        return [f"http://{LOOPBACK}:{port}/" for port in self.ingress_ports]

    # -- Temporal and mongod ------------------------------------------------------------------

    async def kill_temporal(self) -> None:
        await asyncio.to_thread(self.temporal.kill)

    async def start_temporal(self) -> None:
        await asyncio.to_thread(self.temporal.start)

    async def kill_mongod(self) -> None:
        await asyncio.to_thread(self.mongodb.kill)

    async def start_mongod(self) -> None:
        await asyncio.to_thread(self.mongodb.start)

    # -- workers ------------------------------------------------------------------------------

    async def start_worker(self) -> ChildProcess:
        self._starts["worker"] += 1
        log_file = self.work_dir / f"worker-{self._starts['worker']}.log"
        worker = ChildProcess("worker", python_script("worker.py"), env=self.env, log_file=log_file)
        self.workers.append(worker)
        worker.start()
        await wait_for_poller(self.temporal.address, self.env["TEMPORAL_TASK_QUEUE"], worker)
        return worker

    async def kill_workers(self) -> None:
        for worker in self.workers:
            await asyncio.to_thread(_kill, worker)
        self.workers.clear()

    # -- ingresses ----------------------------------------------------------------------------

    async def start_ingress(self, index: int = 0) -> None:
        port = self.ingress_ports[index]
        self._starts[f"ingress-{index}"] += 1
        log_file = self.work_dir / f"ingress-{index}-{self._starts[f'ingress-{index}']}.log"
        env = {**self.env, "HOST": LOOPBACK, "PORT": str(port)}
        ingress = ChildProcess("ingress", python_module("ingress"), env=env, log_file=log_file)
        while len(self.ingresses) <= index:
            self.ingresses.append(None)
        self.ingresses[index] = ingress
        url = self.ingress_urls[index]
        await asyncio.to_thread(ingress.start, http_answers(url), _READY_TIMEOUT)

    async def kill_ingress(self, index: int = 0) -> None:
        ingress = self.ingresses[index]
        if ingress is not None:
            await asyncio.to_thread(_kill, ingress)
            self.ingresses[index] = None

    def log_text(self, prefix: str) -> str:
        """Every log of this stack's processes whose name starts with ``prefix``."""
        return "".join(
            path.read_text(errors="replace") for path in sorted(self.work_dir.glob(f"{prefix}*"))
        )

    def stop(self) -> None:
        for process in [*self.workers, *filter(None, self.ingresses)]:
            process.stop()
        self.workers.clear()
        self.ingresses.clear()


def _kill(process: ChildProcess) -> None:
    process.kill()
    process.stop()  # a no-op on the dead process, but it closes its log file


async def start_restartable_stack(
    exits: AsyncExitStack,
    work_dir: Path,
    sink: SinkServer,
    env: Mapping[str, str] | None = None,
    *,
    ingresses: int = 1,
) -> RestartableStack:
    """Temporal, mongod, one worker and ``ingresses`` ingresses, stopped with ``exits``."""
    temporal = TemporalDevServer(work_dir / "temporal", port=free_port(), ui_port=free_port())
    exits.callback(temporal.stop)
    await asyncio.to_thread(temporal.start)
    mongodb = MongoDB(work_dir / "mongodb", port=free_port())
    exits.callback(mongodb.stop)
    await asyncio.to_thread(mongodb.start)
    stack = RestartableStack(
        work_dir,
        temporal,
        mongodb,
        sink,
        {**_server_env(temporal.address, mongodb.uri, sink.url), **(env or {})},
        [free_port() for _ in range(ingresses)],
    )
    exits.callback(stack.stop)
    await stack.start_worker()
    for index in range(ingresses):
        await stack.start_ingress(index)
    return stack


def modules_env(modules: Sequence[Module]) -> dict[str, str]:
    return {name: value for module in modules for name, value in module.service_env().items()}


# --------------------------------------------------------------------------------------------
# Sending as a broker does


def binary_headers(message: Message, parcel_id: str) -> tuple[dict[str, str], bytes]:
    """A binary-mode CloudEvent as the Awala Internet Endpoint posts it."""
    now = datetime.now(UTC)
    headers = {
        "ce-specversion": "1.0",
        "ce-id": parcel_id,
        "ce-type": INCOMING_SERVICE_MESSAGE_TYPE,
        "ce-source": message.sender_id,
        "ce-subject": SERVER_ENDPOINT_ID,
        "ce-time": now.isoformat(timespec="milliseconds"),
        "ce-expiry": (now + timedelta(days=90)).isoformat(timespec="milliseconds"),
        "content-type": message.content_type,
    }
    return headers, message.body


def pubsub_push(message: Message, parcel_id: str) -> tuple[dict[str, str], bytes]:
    """The same event as a Pub/Sub push subscription delivers it (google-pubsub transport)."""
    now = datetime.now(UTC)
    attributes = {
        "specversion": "1.0",
        "id": parcel_id,
        "type": INCOMING_SERVICE_MESSAGE_TYPE,
        "source": message.sender_id,
        "subject": SERVER_ENDPOINT_ID,
        "datacontenttype": message.content_type,
        "time": now.isoformat(timespec="milliseconds"),
        "expiry": (now + timedelta(days=90)).isoformat(timespec="milliseconds"),
    }
    envelope = {
        "message": {
            "attributes": attributes,
            "data": base64.b64encode(message.body).decode("ascii"),
            "messageId": parcel_id,
        },
        "subscription": "projects/letro-chaos/subscriptions/incoming",
    }
    return {"content-type": "application/json"}, json.dumps(envelope).encode()


@dataclass
class Sender:
    """Posts messages until the ingress takes them, as a broker redelivers.

    Every attempt of one message carries the same parcel id, so the server can tell a
    redelivery from a new message. On a connection error or a 5xx the next attempt goes to
    the next ingress. ``failures`` counts what was answered instead of a 2xx, which proves a
    fault was met.
    """

    http: aiohttp.ClientSession
    urls: Sequence[str]
    deadline: float
    pubsub: bool = False
    failures: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    accepted_at: list[float] = field(default_factory=list)  # time.monotonic() of each 2xx
    _turn: int = 0

    async def deliver(self, message: Message) -> str:
        """``"accepted"``, or why not: a 4xx status (final), or ``"timeout"``."""
        parcel_id = str(uuid.uuid4())
        encode = pubsub_push if self.pubsub else binary_headers
        headers, body = encode(message, parcel_id)
        pause = _RETRY_FIRST
        while time.monotonic() < self.deadline:
            url = self.urls[self._turn % len(self.urls)]
            status = await self._post(url, headers, body)
            if status is not None and 200 <= status < 300:
                self.accepted += 1
                self.accepted_at.append(time.monotonic())
                return "accepted"
            if status is not None and 400 <= status < 500:
                self.failures[str(status)] += 1
                return str(status)
            self.failures[str(status) if status else "connection"] += 1
            self._turn += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, _RETRY_MAX)
        return "timeout"

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> int | None:
        try:
            async with self.http.post(url, headers=headers, data=body) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None


def open_sender(
    exits: AsyncExitStack, urls: Sequence[str], seconds: float, *, pubsub: bool = False
) -> Sender:
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_HTTP_TIMEOUT))
    exits.push_async_callback(session.close)
    return Sender(session, urls, time.monotonic() + seconds, pubsub=pubsub)


# --------------------------------------------------------------------------------------------
# Driving and counting


@dataclass
class Flight:
    """One exchange under way: its replies awaited, and how its messages fared."""

    exchange: Exchange
    replies: tuple[asyncio.Future[float], ...]
    outcomes: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return len(self.outcomes) == len(self.exchange.messages) and all(
            outcome == "accepted" for outcome in self.outcomes
        )


def await_replies(exchanges: Sequence[Exchange], recorder: ReplyRecorder) -> list[Flight]:
    """Await every exchange's replies before anything is sent: none can arrive unawaited."""
    return [
        Flight(exchange, tuple(recorder.expect_reply(reply) for reply in exchange.replies))
        for exchange in exchanges
    ]


async def fly(sender: Sender, flight: Flight) -> None:
    """Post the exchange's messages in order, each once the previous one was taken."""
    for message in flight.exchange.messages:
        outcome = await sender.deliver(message)
        flight.outcomes.append(outcome)
        if outcome != "accepted":
            return


async def drive(sender: Sender, flights: Sequence[Flight]) -> None:
    """Every exchange at once: as many requests in flight as there are exchanges."""
    await asyncio.gather(*(fly(sender, flight) for flight in flights))


async def quiesce(flights: Sequence[Flight], deadline: float, grace: float) -> None:
    """Wait for every accepted exchange's replies (until ``deadline``), then ``grace``
    seconds more for late duplicates."""
    pending = [f for flight in flights if flight.accepted for f in flight.replies if not f.done()]
    if pending:
        await asyncio.wait(pending, timeout=max(deadline - time.monotonic(), 0.0))
    await asyncio.sleep(grace)


@dataclass
class Tally:
    """What became of every request: the figures the tests assert and chaos prints."""

    accepted: int = 0  # messages the ingress took (2xx)
    refused: int = 0  # messages never taken (a 4xx, or the sender's deadline)
    expected: int = 0  # replies the accepted exchanges are owed
    delivered: int = 0  # of those, how many reached the sink
    lost: int = 0
    duplicated: int = 0  # extra event ids carrying a reply already delivered
    redelivered: int = 0  # the same event id again: harmless
    unexpected: dict[str, int] = field(default_factory=dict)  # by content type
    wrong: int = 0  # replies a module judged wrong (an account's bundle)
    lost_by_module: dict[str, int] = field(default_factory=dict)
    duplicated_by_module: dict[str, int] = field(default_factory=dict)
    # Distinct event ids each recipient got, against the replies it was owed.
    ids_per_recipient: dict[str, int] = field(default_factory=dict)
    owed_per_recipient: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            not self.lost
            and not self.duplicated
            and not self.unexpected
            and not self.wrong
            and self.ids_per_recipient == self.owed_per_recipient
        )

    @property
    def summary(self) -> str:
        duplicates = self.duplicated + sum(self.unexpected.values())
        return (
            f"accepted {self.accepted}, delivered {self.delivered}, lost {self.lost},"
            f" duplicated {duplicates}"
        )


def tally(flights: Sequence[Flight], modules: Sequence[Module], recorder: ReplyRecorder) -> Tally:
    """Count every accepted exchange's replies; anything else at the sink is unexpected."""
    by_name = {module.name: module for module in modules}
    result = Tally()
    owed: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    duplicated: Counter[str] = Counter()
    for flight in flights:
        result.accepted += sum(outcome == "accepted" for outcome in flight.outcomes)
        result.refused += sum(outcome != "accepted" for outcome in flight.outcomes)
        if not flight.accepted:
            continue
        module = flight.exchange.module
        for reply in flight.exchange.replies:
            got = recorder.delivered(reply)
            ids = {event.event_id for event in got}
            owed[reply.recipient_id] += 1
            result.expected += 1
            result.delivered += bool(got)
            lost[module] += not got
            duplicated[module] += max(len(ids) - 1, 0)
            result.redelivered += len(got) - len(ids)
            result.wrong += sum(
                by_name[module].check_reply(flight.exchange, event) is not None for event in got
            )
    result.lost = sum(lost.values())
    result.duplicated = sum(duplicated.values())
    result.lost_by_module = {name: count for name, count in lost.items() if count}
    result.duplicated_by_module = {name: count for name, count in duplicated.items() if count}
    result.unexpected = recorder.take_unexpected()
    result.owed_per_recipient = dict(owed)
    ids_by_recipient: dict[str, set[str]] = defaultdict(set)
    for event in recorder.events:
        ids_by_recipient[event.subject].add(event.event_id)
    result.ids_per_recipient = {who: len(ids) for who, ids in ids_by_recipient.items()}
    return result
