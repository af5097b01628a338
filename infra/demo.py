"""Two Letro agents play the product's main story against a running stack.

``python3.11 -m infra demo``, with ``python3.11 -m infra run`` going: alice and bob each ask
the server for an account, receive their VeraId member id bundles, pair with VeraId
signatures and exchange pairing authorisations, as the Letro app does (``LetroAgent`` in
``infra/agents.py``). Their messages reach the ingress as the Awala Internet Endpoint would
post them; the server's replies are read back from the local sink (``GET /messages``), where
the endpoint would pick them up. Each reply is checked as the app checks it, the bundles
against the development VeraId Authority's trust anchor. Each step waits for its replies for
a bounded time and says which reply never came.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urljoin

import httpx

import veraid
from awala.errors import AwalaError
from infra.agents import Account, AgentError, Contact, LetroAgent, incoming_event
from infra.dev_authority import ds_rdata, trust_anchor_from_json
from letro.contact_pairing import parse_contact_pairing_failure
from letro.content_types import (
    ACCOUNT_CREATION,
    ACCOUNT_REQUEST,
    CONTACT_PAIRING_FAILURE,
    CONTACT_PAIRING_REQUEST,
    PAIRING_AUTH,
)
from letro.errors import LetroProtocolError

# The server's Awala endpoint id: whatever the ingress is sent to is the server, locally.
SERVER_ENDPOINT_ID = "0letro-server-endpoint"
DEFAULT_TIMEOUT = 30.0
_POLL_SECONDS = 0.2
_HTTP_TIMEOUT = 10.0
_RUN_HINT = "is `python3.11 -m infra run` going?"
# What the agents refuse in a reply, besides the demo's own complaints.
_REFUSALS = (AgentError, veraid.VeraidError, LetroProtocolError, AwalaError)

T = TypeVar("T")


class DemoError(Exception):
    """A step did not complete; the message says which, and what to look at."""


@dataclass(frozen=True, slots=True)
class Message:
    event_id: str
    content_type: str
    data: bytes


@dataclass
class AgentLog:
    """One agent and everything it sent and received, in order."""

    name: str
    agent: LetroAgent
    sent: list[Message] = field(default_factory=list)
    received: list[Message] = field(default_factory=list)
    account: Account | None = None
    contact: Contact | None = None

    def assigned(self) -> Account:
        """The account, which the steps after account creation rely on."""
        if self.account is None:
            raise DemoError(f"{self.name} has no account yet")
        return self.account

    def paired(self) -> Contact:
        """The contact, which the steps after the match rely on."""
        if self.contact is None:
            raise DemoError(f"{self.name} has no contact yet")
        return self.contact


@dataclass(frozen=True)
class DemoResult:
    alice: AgentLog
    bob: AgentLog
    steps: tuple[str, ...]  # the titles of the steps completed
    seconds: float


class _Network:
    """What the agents see of Awala: the ingress to send to, the sink to receive from."""

    def __init__(
        self, http: httpx.AsyncClient, ingress_url: str, sink_url: str, timeout: float
    ) -> None:
        self._http = http
        self._ingress_url = ingress_url
        self._messages_url = urljoin(sink_url, "messages")
        self.timeout = timeout

    async def send(self, log: AgentLog, content_type: str, content: bytes, what: str) -> None:
        headers, body = incoming_event(
            log.agent.endpoint_id, SERVER_ENDPOINT_ID, content_type, content
        )
        try:
            response = await self._http.post(self._ingress_url, headers=headers, content=body)
        except httpx.HTTPError as error:
            raise DemoError(
                f"cannot send {log.name}'s {what} to the ingress at {self._ingress_url} "
                f"({error!r}): {_RUN_HINT}"
            ) from None
        if response.status_code != 204:
            raise DemoError(
                f"the ingress answered {response.status_code} to {log.name}'s {what}: "
                f"{response.text[:300]}"
            )
        log.sent.append(Message(headers["ce-id"], content_type, content))

    async def receive(self, log: AgentLog, content_type: str, what: str, hint: str) -> Message:
        """The agent's next message, which must be of ``content_type``; DemoError otherwise."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            seen = {message.event_id for message in log.received}
            new = [m for m in await self._inbox(log.agent.endpoint_id) if m.event_id not in seen]
            if new:
                message = new[0]
                log.received.append(message)
                _check_type(log.name, message, content_type, what)
                return message
            await asyncio.sleep(_POLL_SECONDS)
        raise DemoError(f"no {what} for {log.name} after {self.timeout:g} s: {hint}")

    async def _inbox(self, recipient: str) -> list[Message]:
        url = self._messages_url
        try:
            response = await self._http.get(url, params={"recipient": recipient})
        except httpx.HTTPError as error:
            raise DemoError(f"cannot read the sink at {url} ({error!r}): {_RUN_HINT}") from None
        if response.status_code == 404:
            raise DemoError(
                f"the sink at {url} has no message list (an older sink?): restart "
                "`python3.11 -m infra run`"
            )
        if response.status_code != 200:
            raise DemoError(f"the sink answered {response.status_code} to GET {url}")
        try:
            return [
                Message(item["id"], item["datacontenttype"], base64.b64decode(item["data"]))
                for item in response.json()["messages"]
            ]
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise DemoError(f"the sink at {url} listed malformed messages ({error!r})") from None


def _check_type(name: str, message: Message, content_type: str, what: str) -> None:
    if message.content_type == content_type:
        return
    if message.content_type == CONTACT_PAIRING_FAILURE:
        try:
            target, reason = parse_contact_pairing_failure(message.data)
        except (ValueError, TypeError) as error:  # what asn1crypto and IntEnum raise
            raise DemoError(f"{name} got a malformed contact-pairing failure: {error}") from None
        raise DemoError(f"the server refused {name}'s pairing request for {target}: {reason.name}")
    raise DemoError(f"{name} got a {message.content_type} message instead of its {what}")


def _checked(log: AgentLog, what: str, check: Callable[[], T]) -> T:
    """Run the agent's check of a reply, turning its refusal into a DemoError."""
    try:
        return check()
    except _REFUSALS as error:
        raise DemoError(f"{log.name} refused its {what}: {type(error).__name__}: {error}") from None


async def _together(*steps: Coroutine[Any, Any, None]) -> None:
    """Both agents at once; the first failure is the step's."""
    try:
        async with asyncio.TaskGroup() as group:
            for step in steps:
                group.create_task(step)
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None


def _short(endpoint_id: str) -> str:
    return endpoint_id[:11] + "…"


class _Demo:
    def __init__(
        self,
        network: _Network,
        anchors: Sequence[veraid.TrustAnchor],
        say: Callable[[str], None],
    ) -> None:
        self.network = network
        self.anchors = anchors
        self.say = say
        self.started = time.monotonic()
        self.steps: list[str] = []

    def step(self, title: str) -> None:
        self.steps.append(title)
        self.say(f"{len(self.steps)}. {title}")

    def tell(self, log: AgentLog, text: str, *, since: float | None = None) -> None:
        took = "" if since is None else f" ({time.monotonic() - since:.2f} s)"
        self.say(f"   {log.name:<6} {text}{took}")

    async def ask_for_account(self, log: AgentLog) -> None:
        agent = log.agent
        await self.network.send(log, ACCOUNT_REQUEST, agent.account_request(), "account request")
        self.tell(
            log,
            f'sent an account request for "{agent.nickname}" ({agent.locale}) '
            f"from Awala endpoint {_short(agent.endpoint_id)}",
        )

    async def receive_account(self, log: AgentLog, since: float) -> None:
        what = "account-creation reply"
        hint = _RUN_HINT + " (the worker creates accounts in the development Authority)"
        reply = await self.network.receive(log, ACCOUNT_CREATION, what, hint)
        now = datetime.now(UTC)
        log.account = _checked(
            log, what, lambda: log.agent.read_account_creation(reply.data, self.anchors, now)
        )
        self.tell(log, f"is {log.account.user_id}: member id bundle verified", since=since)

    async def ask_to_pair(self, log: AgentLog, peer: AgentLog) -> None:
        account, contact_id = log.assigned(), peer.assigned().user_id
        request = log.agent.pairing_request(account, contact_id, datetime.now(UTC))
        await self.network.send(log, CONTACT_PAIRING_REQUEST, request, "contact-pairing request")
        self.tell(
            log, f"sent a contact-pairing request for {contact_id}, signed as {account.user_id}"
        )

    async def receive_match(self, log: AgentLog, peer: AgentLog, since: float) -> None:
        account, contact_id = log.assigned(), peer.assigned().user_id
        what = "contact-pairing match"
        hint = (
            _RUN_HINT + " (the ingress drops requests it cannot verify: does it trust the "
            "development Authority's anchor?)"
        )
        reply = await self.network.receive(log, CONTACT_PAIRING_REQUEST, what, hint)
        now = datetime.now(UTC)

        def check() -> Contact:
            return log.agent.read_pairing_match(reply.data, account, contact_id, self.anchors, now)

        log.contact = _checked(log, what, check)
        self.tell(
            log,
            f"got {log.contact.veraid_id}'s request: signature verified, "
            f"Awala endpoint {_short(log.contact.endpoint_id)}",
            since=since,
        )

    async def authorise(self, log: AgentLog) -> None:
        contact = log.paired()
        params = log.agent.authorisation(contact)
        await self.network.send(log, PAIRING_AUTH, params, "pairing authorisation")
        self.tell(
            log,
            f"sent a pairing authorisation for {contact.veraid_id} "
            f"(a PDA for {_short(contact.endpoint_id)}, signed by its identity key)",
        )

    async def receive_authorisation(self, log: AgentLog, since: float) -> None:
        contact = log.paired()
        what = "pairing authorisation"
        reply = await self.network.receive(log, PAIRING_AUTH, what, _RUN_HINT)
        routing = _checked(log, what, lambda: log.agent.read_authorisation(reply.data, contact))
        self.tell(
            log,
            f"got {contact.veraid_id}'s authorisation: granted by "
            f"{_short(routing.granter_id)} to {_short(routing.grantee_id)}, its own endpoint",
            since=since,
        )

    async def play(self, alice: AgentLog, bob: AgentLog) -> None:
        self.step("Each agent asks for an account, signing the request with its new RSA key")
        await _together(self.ask_for_account(alice), self.ask_for_account(bob))
        self.step("Each agent receives its account: a VeraId member id bundle for that key")
        since = time.monotonic()
        await _together(self.receive_account(alice, since), self.receive_account(bob, since))
        self.step("Each agent asks to pair with the other, signing with its VeraId id")
        await _together(self.ask_to_pair(alice, bob), self.ask_to_pair(bob, alice))
        self.step("The server matches them: each agent receives the other's request")
        since = time.monotonic()
        await _together(
            self.receive_match(alice, bob, since), self.receive_match(bob, alice, since)
        )
        self.step("Each agent authorises the other to send it messages")
        await _together(self.authorise(alice), self.authorise(bob))
        self.step("Each agent receives the other's authorisation")
        since = time.monotonic()
        await _together(
            self.receive_authorisation(alice, since), self.receive_authorisation(bob, since)
        )


async def _get(http: httpx.AsyncClient, url: str, what: str) -> httpx.Response:
    try:
        return await http.get(url)
    except httpx.HTTPError as error:
        raise DemoError(f"cannot reach {what} at {url} ({error!r}): {_RUN_HINT}") from None


async def _check_ingress(http: httpx.AsyncClient, url: str) -> None:
    response = await _get(http, url, "the ingress")
    if response.status_code != 200:
        raise DemoError(f"the ingress is not ready ({response.status_code}): {response.text}")


async def _dev_trust_anchor(http: httpx.AsyncClient, authority_url: str) -> veraid.TrustAnchor:
    url = urljoin(authority_url.rstrip("/") + "/", "_dev/trust-anchor")
    response = await _get(http, url, "the development VeraId Authority")
    try:
        response.raise_for_status()
        return trust_anchor_from_json(response.json())
    except (httpx.HTTPError, ValueError) as error:
        raise DemoError(f"no trust anchor from {url} ({error})") from None


def _print(line: str) -> None:
    print(line, flush=True)


async def run_demo(
    ingress_url: str,
    sink_url: str,
    authority_url: str,
    *,
    reply_timeout: float = DEFAULT_TIMEOUT,
    say: Callable[[str], None] = _print,
) -> DemoResult:
    """Play the demo, telling each step through ``say``; raise DemoError if one fails.

    ``reply_timeout`` bounds each wait for replies, in seconds; the Authority at
    ``authority_url`` is asked for its trust anchor.
    """
    async with httpx.AsyncClient(timeout=_HTTP_TIMEOUT) as http:
        await _check_ingress(http, ingress_url)
        anchor = await _dev_trust_anchor(http, authority_url)
        say(f"Letro demo: two agents, alice and bob, and the server at {ingress_url}")
        say(f"(the server's replies to them are read from the local sink at {sink_url})")
        say(f"VeraId bundles are verified against the development DNSSEC root: {ds_rdata(anchor)}")
        # RSA-2048 keys take a while to make; off the event loop, both agents at once.
        agents = await asyncio.gather(
            asyncio.to_thread(LetroAgent.new, "alice", "en-us"),
            asyncio.to_thread(LetroAgent.new, "bob", "en-gb"),
        )
        alice, bob = AgentLog("alice", agents[0]), AgentLog("bob", agents[1])
        demo = _Demo(_Network(http, ingress_url, sink_url, reply_timeout), [anchor], say)
        await demo.play(alice, bob)
    seconds = time.monotonic() - demo.started
    say(f"{alice.assigned().user_id} and {bob.assigned().user_id} are contacts ({seconds:.1f} s).")
    return DemoResult(alice, bob, tuple(demo.steps), seconds)


def _local_url(variable: str, default_port: int) -> str:
    return f"http://127.0.0.1:{os.environ.get(variable, default_port)}/"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingress", default=_local_url("LETRO_INGRESS_PORT", 8080))
    parser.add_argument("--sink", default=_local_url("LETRO_SINK_PORT", 8081))
    parser.add_argument("--authority", default=_local_url("LETRO_AUTHORITY_PORT", 8082))
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for each reply"
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(run_demo(args.ingress, args.sink, args.authority, reply_timeout=args.timeout))
    except DemoError as error:
        print(f"Demo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
