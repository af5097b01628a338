"""``python -m infra demo`` end to end, as ``infra run`` sets the stack up.

A worker creates accounts in the development Authority (in this process), an ingress trusts
that Authority's DNSSEC root besides the DNS root's (``infra.local.veraid_trust_anchors``),
and the demo reads the replies from the session's sink through ``GET /messages``.
"""

from __future__ import annotations

import re

import pytest

import veraid
from config import parse_trust_anchors
from infra.demo import SERVER_ENDPOINT_ID, DemoError, run_demo
from infra.dev_authority import DevAuthorityServer
from infra.local import veraid_trust_anchors
from infra.services import free_port
from letro.content_types import (
    ACCOUNT_CREATION,
    ACCOUNT_REQUEST,
    CONTACT_PAIRING_REQUEST,
    PAIRING_AUTH,
)
from tests.conftest import (
    Ingress,
    Sink,
    StartAccountWorker,
    StartIngress,
    Worker,
    serve_sink,
)

pytestmark = pytest.mark.integration

STEPS = (
    "Each agent asks for an account, signing the request with its new RSA key",
    "Each agent receives its account: a VeraId member id bundle for that key",
    "Each agent asks to pair with the other, signing with its VeraId id",
    "The server matches them: each agent receives the other's request",
    "Each agent authorises the other to send it messages",
    "Each agent receives the other's authorisation",
)


@pytest.fixture(scope="module")
def demo_worker(
    start_account_worker: StartAccountWorker, dev_authority: DevAuthorityServer
) -> Worker:
    return start_account_worker(
        "letro-demo",
        VERAID_TRUST_ANCHORS=veraid_trust_anchors(dev_authority.authority.trust_anchor),
    )


@pytest.fixture(scope="module")
def demo_ingress(
    start_ingress: StartIngress, demo_worker: Worker, dev_authority: DevAuthorityServer
) -> Ingress:
    return start_ingress(
        TEMPORAL_TASK_QUEUE=demo_worker.task_queue,
        VERAID_TRUST_ANCHORS=veraid_trust_anchors(dev_authority.authority.trust_anchor),
    )


def test_local_stack_trusts_the_dns_root_and_the_development_authority() -> None:
    dev = veraid.TrustAnchor(12345, 8, 2, bytes.fromhex("abcdef"))
    assert parse_trust_anchors(veraid_trust_anchors(dev)) == (*veraid.IANA_TRUST_ANCHORS, dev)
    # Anchors the operator configured are kept instead of the DNS root's.
    mine = veraid.TrustAnchor(1, 8, 2, b"\x01")
    assert parse_trust_anchors(veraid_trust_anchors(dev, "1 8 2 01")) == (mine, dev)


async def test_two_agents_create_accounts_pair_and_authorise_each_other(
    demo_ingress: Ingress, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    lines: list[str] = []
    result = await run_demo(demo_ingress.url, sink.url, dev_authority.url, say=lines.append)

    assert result.steps == STEPS
    assert [line for line in lines if line[:1].isdigit()] == [
        f"{number}. {title}" for number, title in enumerate(STEPS, 1)
    ]
    alice, bob = result.alice.assigned().user_id, result.bob.assigned().user_id
    # The locales pick the domains; a name already taken gets a numeric suffix.
    assert re.fullmatch(r"alice(-\d{5})?@applepie\.rocks", alice)  # en-us
    assert re.fullmatch(r"bob(-\d{5})?@cuppa\.fans", bob)  # en-gb
    members = {f"{m.name}@{m.organisation}" for m in dev_authority.authority.members.values()}
    assert {alice, bob} <= members
    assert lines[-1].startswith(f"{alice} and {bob} are contacts")

    for log, peer in ((result.alice, result.bob), (result.bob, result.alice)):
        # Each agent sent its three messages, and got exactly three: its account, then the
        # peer's own pairing request and authorisation, byte for byte.
        assert [m.content_type for m in log.sent] == [
            ACCOUNT_REQUEST,
            CONTACT_PAIRING_REQUEST,
            PAIRING_AUTH,
        ]
        events = sink.recorder.to(log.agent.endpoint_id)
        assert [(e.content_type, e.data) for e in events] == [
            (ACCOUNT_CREATION, log.received[0].data),
            (CONTACT_PAIRING_REQUEST, peer.sent[1].data),
            (PAIRING_AUTH, peer.sent[2].data),
        ]
        assert [e.event_id for e in events] == [m.event_id for m in log.received]
        assert {e.source for e in events} == {SERVER_ENDPOINT_ID}
        assert log.paired().endpoint_id == peer.agent.endpoint_id
        assert log.paired().veraid_id == peer.assigned().user_id


async def test_without_the_development_anchor_the_pairing_requests_are_dropped(
    start_ingress: StartIngress, demo_worker: Worker, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    # The session's default: the ingress trusts another root, as a stack trusting only the
    # DNS root would. Accounts are created, but the pairing requests cannot be verified.
    ingress = start_ingress(TEMPORAL_TASK_QUEUE=demo_worker.task_queue)
    lines: list[str] = []
    with pytest.raises(DemoError, match=r"no contact-pairing match for (alice|bob) after 3 s"):
        await run_demo(ingress.url, sink.url, dev_authority.url, reply_timeout=3, say=lines.append)
    assert lines[-1].startswith("4. The server matches them")
    ingress.process.stop()
    assert ingress.process.log_file is not None
    log = ingress.process.log_file.read_text()
    assert "Refused unverifiable contact pairing request" in log
    assert "No DNSKEY of . matches its DS records or trust anchors" in log


async def test_a_reply_that_never_comes_is_named(
    demo_ingress: Ingress, dev_authority: DevAuthorityServer
) -> None:
    # Replies go to the session's sink; this one stays empty.
    async with serve_sink() as empty:
        with pytest.raises(DemoError) as error:
            await run_demo(
                demo_ingress.url, empty.url, dev_authority.url, reply_timeout=2, say=print
            )
    assert str(error.value).startswith("no account-creation reply for ")
    assert "after 2 s: is `python3.11 -m infra run` going?" in str(error.value)


async def test_an_unreachable_ingress_is_named(
    sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(DemoError, match=r"cannot reach the ingress at .* infra run` going"):
        await run_demo(url, sink.url, dev_authority.url, say=print)
