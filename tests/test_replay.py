"""Every committed workflow history replays on the current code, as the worker runs it.

The histories in ``tests/histories/`` were recorded from real runs (``tests/record_histories.py``);
a change to a workflow that would break a run in flight (README, "Changing a workflow") makes
its replay fail here, before the change is deployed. The last tests show that the check bites:
copies of the pair workflows with one command moved fail to replay the match histories with
a nondeterminism error, and the same change behind ``workflow.patched`` replays.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from contract.pairing import PairingInput, PairingOutcome, WaitingRequest
from tests.conftest import DEV_AUTHORITY_TOKEN
from worker import WORKFLOWS, workflow_runner
from workflows import visibility
from workflows.legacy_pairing import LegacyContactPairing
from workflows.veraid_pairing import VeraidContactPairing

HISTORIES_DIR = Path(__file__).resolve().parent / "histories"
HISTORIES = sorted(HISTORIES_DIR.glob("*.json"))
CLOSING_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


def load(path: Path) -> WorkflowHistory:
    """The history in ``path``, under its own workflow id (outgoing event ids derive from it)."""
    events = WorkflowHistory.from_json("", path.read_text()).events
    started = events[0].workflow_execution_started_event_attributes
    return WorkflowHistory(started.workflow_id, events)


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def replayer(workflows: Sequence[type] = WORKFLOWS) -> Replayer:
    """A replayer that runs workflows as ``worker.py`` does: same sandbox and passthrough."""
    return Replayer(workflows=workflows, workflow_runner=workflow_runner())


def replacing(name: str, workflow_class: type) -> list[type]:
    """The worker's workflows, with ``workflow_class`` registered instead of the type ``name``."""
    others = [w for w in WORKFLOWS if workflow._Definition.must_from_class(w).name != name]
    assert len(others) == len(WORKFLOWS) - 1
    return [*others, workflow_class]


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_committed_history_replays(path: Path) -> None:
    result = await replayer().replay_workflow(load(path))  # raises on a nondeterminism error

    assert result.replay_failure is None


def test_every_workflow_type_of_the_worker_has_a_history() -> None:
    registered = {workflow._Definition.must_from_class(w).name for w in WORKFLOWS}

    assert {workflow_type(load(path)) for path in HISTORIES} == registered


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
def test_history_is_a_whole_run_named_after_its_type(path: Path) -> None:
    history = load(path)

    assert path.name.startswith(workflow_type(history) + ".")
    # Closed, so replay covers the branch to its end: nothing left for a change to break unseen.
    assert history.events[-1].event_type in CLOSING_EVENTS
    assert history.workflow_id


def payload_bytes(node: object) -> Iterator[bytes]:
    """Every payload's data, and every base64 text inside it (the messages' ``content_b64``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "data" and isinstance(value, str):
                data = base64.b64decode(value)
                yield data
                yield from _nested_base64(data)
            else:
                yield from payload_bytes(value)
    elif isinstance(node, list):
        for item in node:
            yield from payload_bytes(item)


def _nested_base64(data: bytes) -> Iterator[bytes]:
    for text in re.findall(rb'"([A-Za-z0-9+/=]{16,})"', data):
        try:
            yield base64.b64decode(text, validate=True)
        except binascii.Error:
            continue


# DER of an RSA private key, PKCS#8 (version 0, rsaEncryption) or PKCS#1 (version 0, modulus).
PRIVATE_KEY_DER = (bytes.fromhex("020100300d06092a864886f70d010101"), bytes.fromhex("0201000282"))
SECRET_TEXTS = (b"PRIVATE KEY", DEV_AUTHORITY_TOKEN.encode(), b"Bearer ")


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
def test_history_holds_no_secret(path: Path) -> None:
    # Test ids, public keys, signed requests and bundles only: no key or token of the stack.
    blobs = [path.read_bytes(), *payload_bytes(json.loads(path.read_text()))]

    for secret in (*SECRET_TEXTS, *PRIVATE_KEY_DER):
        assert not any(secret in blob for blob in blobs), secret


# --- The check bites: command changes a deploy could make by mistake ----------------------------


@workflow.defn(name="VeraidContactPairing", sandboxed=False)
class VeraidDeletingBeforeMatching(VeraidContactPairing):
    """The match step reordered: the stored request is deleted before the matches are sent."""

    @workflow.run
    async def run(self, state: PairingInput) -> PairingOutcome:
        return await self._run(state)

    async def _deliver_match(self, pair: Sequence[WaitingRequest], match_number: int) -> None:
        first, second = (item.request for item in pair)
        await self._delete(first.requester_veraid_id, first.target_veraid_id)
        await asyncio.gather(
            self._send_match(
                self._match_to(recipient=first, contact=second, match_number=match_number)
            ),
            self._send_match(
                self._match_to(recipient=second, contact=first, match_number=match_number)
            ),
        )


@workflow.defn(name="LegacyContactPairing", sandboxed=False)
class LegacyUpsertingOnEveryStore(LegacyContactPairing):
    """A search attribute upserted at another point: ``LetroPending`` on every stored request,
    not only when it changes (the pair starts with it set, so the original upserts nothing)."""

    @workflow.run
    async def run(self, state: PairingInput) -> PairingOutcome:
        return await self._run(state)

    async def _store(
        self, items: Sequence[WaitingRequest], pending: dict[str, WaitingRequest], ttl: timedelta
    ) -> None:
        await super()._store(items, pending, ttl)
        workflow.upsert_search_attributes([visibility.PENDING.value_set(True)])


@workflow.defn(name="LegacyContactPairing", sandboxed=False)
class LegacyRecordingMatchEarly(LegacyContactPairing):
    """The match's upsert moved before its local activities, within the same workflow task."""

    @workflow.run
    async def run(self, state: PairingInput) -> PairingOutcome:
        return await self._run(state)

    async def _deliver_match(self, pair: Sequence[WaitingRequest], match_number: int) -> None:
        visibility.record(outcome="matched", pending=False)
        await super()._deliver_match(pair, match_number)


@workflow.defn(name="VeraidContactPairing", sandboxed=False)
class VeraidDeletingBeforeMatchingPatched(VeraidDeletingBeforeMatching):
    """The reordering of ``VeraidDeletingBeforeMatching`` guarded as README says."""

    @workflow.run
    async def run(self, state: PairingInput) -> PairingOutcome:
        return await self._run(state)

    async def _deliver_match(self, pair: Sequence[WaitingRequest], match_number: int) -> None:
        if workflow.patched("delete-before-matching"):
            await super()._deliver_match(pair, match_number)
        else:
            await VeraidContactPairing._deliver_match(self, pair, match_number)


# What core's nondeterminism error names. Its wording follows where replay first diverges,
# which depends on how the recording's workflow tasks fell (seen with two recordings of the
# VeraId match: a marker of another activity type; a marker with no command), so only the
# kind of command is asserted.
CHANGED = {
    "VeraidContactPairing": (VeraidDeletingBeforeMatching, r"(?i)local ?activity"),
    "LegacyContactPairing": (
        LegacyUpsertingOnEveryStore,
        r"UpsertWorkflowSearchAttributes",
    ),
}


@pytest.mark.parametrize("name", CHANGED)
async def test_a_command_change_fails_replay_of_the_match(name: str) -> None:
    changed_class, names_the_command = CHANGED[name]
    match = load(HISTORIES_DIR / f"{name}.match.json")
    changed = replayer(replacing(name, changed_class))

    with pytest.raises(
        workflow.NondeterminismError, match=r"\[TMPRL1100\] Nondeterminism"
    ) as error:
        await changed.replay_workflow(match)
    assert re.search(names_the_command, str(error.value)), error.value


async def test_a_command_moved_across_local_activities_of_one_task_still_replays() -> None:
    """Local activities are matched to their markers by sequence number, not by position among
    the other commands of their workflow task: the worker accepts this move, and so does the
    check (README, "Changing a workflow"). Should an SDK upgrade tighten that, this fails."""
    match = load(HISTORIES_DIR / "LegacyContactPairing.match.json")
    moved = replayer(replacing("LegacyContactPairing", LegacyRecordingMatchEarly))

    result = await moved.replay_workflow(match)

    assert result.replay_failure is None


async def test_the_same_change_behind_a_patch_replays() -> None:
    match = load(HISTORIES_DIR / "VeraidContactPairing.match.json")
    patched = replayer(replacing("VeraidContactPairing", VeraidDeletingBeforeMatchingPatched))

    result = await patched.replay_workflow(match)

    assert result.replay_failure is None


def test_the_secret_check_looks_inside_payloads() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    message = {"content_b64": base64.b64encode(der).decode()}
    payload = {"data": base64.b64encode(json.dumps(message).encode()).decode()}

    blobs = list(payload_bytes({"events": [{"input": {"payloads": [payload]}}]}))

    assert any(PRIVATE_KEY_DER[0] in blob for blob in blobs)
