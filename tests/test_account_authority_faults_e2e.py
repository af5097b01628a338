"""Account creation through Authority faults as the real Authority shows them: ingress,
Temporal, a worker with a shortened retry window, the development Authority over HTTP, the sink.

The worker retries each Authority call for ``RETRY_SECONDS`` (a week in service), at most
``MAX_INTERVAL_SECONDS`` apart (five minutes in service). ``OLD_WINDOW_SECONDS`` stands for
the 15 minutes after which requests used to be dropped: outages here last longer than it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from temporalio.client import Client
from temporalio.service import RPCError

from infra.dev_authority import DevAuthorityServer
from infra.services import free_port
from tests.account_helpers import build_request, pss_request, pss_spki, spki
from tests.conftest import Ingress, Sink, StartAccountWorker, StartIngress, Worker
from tests.test_account_creation_e2e import (
    _check_reply,
    _endpoint,
    _inject,
    _members,
    _no_reply_for,
    _prefix,
    _replies,
    _send,
)
from workflows.account_creation import workflow_id_for

pytestmark = pytest.mark.integration

RETRY_SECONDS = 60
MAX_INTERVAL_SECONDS = 2
OLD_WINDOW_SECONDS = 10
OUTAGE_SECONDS = 20
# A locale whose domain the development Authority has no organisation for.
UNKNOWN_ORG_LOCALE, UNKNOWN_ORG = "fr-fr", "no-such-org.example"
DEADLINE = 30.0


class Patient:
    """The worker (and its ingress) that these tests drive."""

    def __init__(self, worker: Worker, ingress: Ingress, metrics_url: str) -> None:
        self.worker, self.ingress, self.metrics_url = worker, ingress, metrics_url

    def log(self, workflow_id: str | None = None) -> list[dict[str, Any]]:
        lines = []
        for line in self.worker.log_file.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if workflow_id is None or event.get("workflowId") == workflow_id:
                lines.append(event)
        return lines

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of the series of ``name`` that have ``labels``, as the worker serves them."""
        async with httpx.AsyncClient() as http:
            text = (await http.get(self.metrics_url)).text
        total = 0.0
        for line in text.splitlines():
            series, _, value = line.rpartition(" ")
            if series.partition("{")[0] != name:
                continue
            if all(f'{key}="{wanted}"' in series for key, wanted in labels.items()):
                total += float(value)
        return total


@pytest.fixture(scope="module")
def patient(start_account_worker: StartAccountWorker, start_ingress: StartIngress) -> Patient:
    metrics_port = free_port()
    worker = start_account_worker(
        "letro-accounts-patient",
        VAUTH_RETRY_TIMEOUT_SECONDS=str(RETRY_SECONDS),
        VAUTH_RETRY_MAX_INTERVAL_SECONDS=str(MAX_INTERVAL_SECONDS),
        ACCOUNT_DOMAINS_BY_LOCALE=f"en-us=applepie.rocks,{UNKNOWN_ORG_LOCALE}={UNKNOWN_ORG}",
        METRICS_PORT=str(metrics_port),
    )
    ingress = start_ingress(TEMPORAL_TASK_QUEUE=worker.task_queue)
    return Patient(worker, ingress, f"http://127.0.0.1:{metrics_port}/metrics")


def _failures(patient: Patient, workflow_id: str, message: str) -> list[dict[str, Any]]:
    return [e for e in patient.log(workflow_id) if e.get("event", "").startswith(message)]


async def _until(check: Any, seconds: float = DEADLINE) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if check():
                return
            await asyncio.sleep(0.2)


def _read(path: Path | None) -> str:
    assert path is not None
    return path.read_text()


async def test_authority_down_longer_than_the_old_window(
    patient: Patient, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    sender, prefix = _endpoint(), _prefix()
    content, key = pss_request(prefix)
    await dev_authority.stop()
    started = time.monotonic()
    try:
        await _send(patient.ingress, sender, content)
        await asyncio.sleep(OUTAGE_SECONDS)  # connections refused all along
    finally:
        await dev_authority.start()
    [reply] = await _replies(sink, sender)
    assert time.monotonic() - started > OLD_WINDOW_SECONDS + 5
    assert _check_reply(reply, dev_authority, pss_spki(key))[2] == f"{prefix}@applepie.rocks"
    assert _members(dev_authority, prefix) == [f"{prefix}@applepie.rocks"]
    failures = _failures(
        patient, workflow_id_for(sender, content), "VeraId Authority call failed; retrying"
    )
    # Every failed attempt logged, 1 s doubling to 2 s apart: about one per 2 s of outage.
    assert len(failures) >= OUTAGE_SECONDS // MAX_INTERVAL_SECONDS - 2
    assert {e["operation"] for e in failures} == {"create_vauth_member"}
    assert all("ConnectError" in e["err"] for e in failures)
    await asyncio.sleep(1)
    assert len(sink.recorder.to(sender)) == 1  # one reply: no second member, no second reply


async def test_rejected_credentials_are_retried_and_logged(
    patient: Patient, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    # A token that expired, then one without the rights, until an operator fixes it.
    sender, prefix = _endpoint(), _prefix()
    await _inject(
        dev_authority, operation="create_member", name=prefix, statuses=[401] * 3 + [403] * 3
    )
    content, key = pss_request(prefix)
    await _send(patient.ingress, sender, content)
    [reply] = await _replies(sink, sender)
    assert _check_reply(reply, dev_authority, pss_spki(key))[2] == f"{prefix}@applepie.rocks"
    assert _members(dev_authority, prefix) == [f"{prefix}@applepie.rocks"]
    errors = _failures(
        patient, workflow_id_for(sender, content), "VeraId Authority credentials are wrong"
    )
    assert [e["level"] for e in errors] == ["error"] * 6
    assert [re.search(r"HTTP (\d+)", e["err"]).group(1) for e in errors] == (  # type: ignore[union-attr]
        ["401"] * 3 + ["403"] * 3
    )
    unauthorised = await patient.metric(
        "letro_authority_errors_total",
        operation="create_vauth_member",
        error="AuthorityUnauthorised",
    )
    assert unauthorised >= 6


async def test_edwards_key_is_refused_at_the_ingress(
    patient: Patient, sink: Sink, dev_authority: DevAuthorityServer, temporal_client: Client
) -> None:
    # Verified (the signature is good) but refused: the real Authority would import the key,
    # then answer 500 for its bundle for ever.
    sender, prefix = _endpoint(), _prefix()
    key = ed25519.Ed25519PrivateKey.generate()
    content = build_request(prefix, "en-us", spki(key), key.sign)
    calls_before = sum(dev_authority.authority.calls.values())
    await _send(patient.ingress, sender, content)
    await _no_reply_for(sink, sender, 2)
    assert sum(dev_authority.authority.calls.values()) == calls_before
    assert _members(dev_authority, prefix) == []
    with pytest.raises(RPCError, match="not found"):
        await temporal_client.get_workflow_handle(workflow_id_for(sender, content)).describe()
    ingress_log = _read(patient.ingress.process.log_file)
    assert "its key cannot be a VeraId member key" in ingress_log
    assert "VeraId member keys are RSA; this one is Ed25519" in ingress_log


async def test_unknown_organisation_deletes_the_member(
    patient: Patient, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    # The real Authority creates the member and imports the key, then the bundle is a
    # bodiless 404: it can never succeed, so the member goes and no reply is sent.
    sender, prefix = _endpoint(), _prefix()
    content, _ = pss_request(prefix, UNKNOWN_ORG_LOCALE)
    await _send(patient.ingress, sender, content)
    workflow_id = workflow_id_for(sender, content)
    await _until(lambda: bool(_failures(patient, workflow_id, "Member deleted")))
    requests = [op for op, name in dev_authority.authority.requests if name == prefix]
    assert requests == [
        "create_member",
        "import_public_key",
        "get_member_bundle",
        "delete_member",
    ]
    assert _members(dev_authority, prefix) == []
    [refusal] = _failures(patient, workflow_id, "VeraId Authority call failed")
    assert (refusal["operation"], refusal["retried"]) == ("get_vauth_member_bundle", False)
    assert "HTTP 404" in refusal["err"]
    assert sink.recorder.to(sender) == []


async def test_missing_dnssec_chain_is_retried(
    patient: Patient, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    sender, prefix = _endpoint(), _prefix()
    await _inject(dev_authority, kind="no-dnssec-chain", name=prefix, count=3)
    content, key = pss_request(prefix)
    await _send(patient.ingress, sender, content)
    [reply] = await _replies(sink, sender)
    _check_reply(reply, dev_authority, pss_spki(key))
    bundles = [op for op, name in dev_authority.authority.requests if name == prefix]
    assert bundles.count("get_member_bundle") == 4  # three 503s, then the bundle
    failures = _failures(
        patient, workflow_id_for(sender, content), "VeraId Authority call failed; retrying"
    )
    assert ["HTTP 503" in e["err"] for e in failures] == [True] * 3


async def test_lost_create_member_response(
    patient: Patient, sink: Sink, dev_authority: DevAuthorityServer
) -> None:
    # The Authority creates the member, and its answer is lost: the retry meets 409.
    sender, prefix = _endpoint(), _prefix()
    await _inject(dev_authority, operation="create_member", name=prefix, kind="drop-response")
    orphans_before = await patient.metric("letro_account_orphan_members_total")
    content, key = pss_request(prefix)
    await _send(patient.ingress, sender, content)
    [reply] = await _replies(sink, sender)
    _, _, assigned = _check_reply(reply, dev_authority, pss_spki(key))
    assert re.fullmatch(rf"{prefix}-\d{{5}}@applepie\.rocks", assigned)
    # The orphan keeps the user's name, without a key; nothing else was left behind.
    members = {
        m.name: len(m.public_keys)
        for m in dev_authority.authority.members.values()
        if m.name and m.name.startswith(prefix)
    }
    assert members == {prefix: 0, assigned.partition("@")[0]: 1}
    [warning] = _failures(patient, workflow_id_for(sender, content), "Possible orphan member")
    assert (warning["level"], warning["organisation"], warning["memberName"]) == (
        "warning",
        "applepie.rocks",
        prefix,
    )
    async with asyncio.timeout(10):  # the worker's exporter may lag a moment
        while True:
            if await patient.metric("letro_account_orphan_members_total") > orphans_before:
                break
            await asyncio.sleep(0.2)
    assert await patient.metric("letro_account_orphan_members_total") == orphans_before + 1
    await asyncio.sleep(1)
    assert len(sink.recorder.to(sender)) == 1
