"""Payloads encrypted at rest, through the real stack: ingress, worker, Temporal, codec server.

The deployments here run on task queues of their own with TEMPORAL_PAYLOAD_KEYS set; the
session's plain ``temporal_client`` plays someone who reads Temporal's store without the keys.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle, WorkflowHistory

from contract.pairing import PairingStatus
from infra.agents import Agent, new_agent
from infra.processes import ChildProcess, http_answers, python_module
from infra.services import TemporalDevServer, free_port
from payload_codec import (
    ENCODING,
    KEY_ID_KEY,
    EncryptionCodec,
    PayloadKey,
    PayloadKeyring,
    UnknownPayloadKey,
    data_converter,
)
from tests.conftest import Deployment, Sink, StartIngress, StartWorker
from tests.helpers import send_pairing_request
from tests.test_legacy_pairing_e2e import wait_for_matches
from workflows.legacy_pairing import workflow_id_for

pytestmark = pytest.mark.integration

KEY_A = PayloadKey("key-a", AESGCM.generate_key(256))
KEY_B = PayloadKey("key-b", AESGCM.generate_key(256))
ONLY_A = PayloadKeyring((KEY_A,), KEY_A.key_id)
ROTATED = PayloadKeyring((KEY_A, KEY_B), KEY_B.key_id)
ONLY_B = PayloadKeyring((KEY_B,), KEY_B.key_id)
CODEC_TOKEN = "codec-test-token"
UI_ORIGIN = "http://localhost:8233"


def key_settings(keyring: PayloadKeyring) -> dict[str, str]:
    keys = ",".join(f"{k.key_id}:{base64.b64encode(k.secret).decode()}" for k in keyring.keys)
    return {"TEMPORAL_PAYLOAD_KEYS": keys, "TEMPORAL_PAYLOAD_ACTIVE_KEY": keyring.active_key_id}


def deploy(
    start_worker: StartWorker,
    start_ingress: StartIngress,
    sink: Sink,
    task_queue: str,
    keyring: PayloadKeyring,
) -> Deployment:
    worker = start_worker(task_queue, K_SINK=sink.url, **key_settings(keyring))
    ingress = start_ingress(TEMPORAL_TASK_QUEUE=task_queue, **key_settings(keyring))
    return Deployment(ingress, worker)


@pytest.fixture(scope="module")
def encrypted(
    start_worker: StartWorker, start_ingress: StartIngress, sink: Sink
) -> Iterator[Deployment]:
    deployment = deploy(start_worker, start_ingress, sink, "letro-encrypted", ONLY_A)
    yield deployment
    deployment.stop()


async def codec_client(temporal: TemporalDevServer, keyring: PayloadKeyring) -> Client:
    return await Client.connect(temporal.address, data_converter=data_converter(keyring))


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload in a protobuf message (inputs, results, memos, failures...) but its
    search attributes."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        # Search attributes are indexed by Temporal's visibility store, so no codec touches
        # them; ours hold no personal data (workflows/visibility.py).
        if field.message_type is None or field.name == "search_attributes":
            continue
        if field.message_type.GetOptions().map_entry:
            values = value.values()
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
        elif field.is_repeated:
            values = value
        else:
            values = [value]
        for item in values:
            yield from payloads_in(item)


# Markers are written by Temporal's core SDK, past the data converter: only a local
# activity's result (under "result") goes through it. The rest is bookkeeping, such as a local
# activity marker's "data", which holds these fields only (no input, no result).
CONVERTED_MARKER_DETAILS = "result"
LOCAL_ACTIVITY_MARKER = "core_local_activity"
LOCAL_ACTIVITY_MARKER_FIELDS = {
    "seq",
    "attempt",
    "activity_id",
    "activity_type",
    "complete_time",
    "backoff",
    "original_schedule_time",
    "activation_index",
}


def history_payloads(history: WorkflowHistory) -> list[Payload]:
    """The payloads of a history the data converter wrote: all of them but marker bookkeeping."""
    found: list[Payload] = []
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            event = copy_of(event)
            details = event.marker_recorded_event_attributes.details
            for name in [name for name in details if name != CONVERTED_MARKER_DETAILS]:
                del details[name]
        found += payloads_in(event)
    return found


def marker_bookkeeping(history: WorkflowHistory) -> list[tuple[str, Payload]]:
    """Each marker's payloads the core SDK wrote, with the marker's name."""
    return [
        (event.marker_recorded_event_attributes.marker_name, payload)
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        for name, details in event.marker_recorded_event_attributes.details.items()
        if name != CONVERTED_MARKER_DETAILS
        for payload in details.payloads
    ]


def copy_of(event: HistoryEvent) -> HistoryEvent:
    clone = HistoryEvent()
    clone.CopyFrom(event)
    return clone


def personal_data(*agents: Agent) -> list[bytes]:
    """What must never be readable in Temporal's store: ids and keys, raw and base64."""
    needles = []
    for agent in agents:
        key_b64 = base64.b64encode(agent.id_key)
        needles += [agent.veraid_id.encode(), agent.endpoint_id.encode(), agent.id_key, key_b64]
        needles.append(base64.b64encode(key_b64))  # the key inside a base64-encoded match CSV
    return needles


async def pair(http: httpx.AsyncClient, deployment: Deployment, sink: Sink) -> tuple[Agent, Agent]:
    alice, bob = new_agent("alice"), new_agent("bob")
    assert (await send_pairing_request(http, deployment.ingress.url, alice, bob)).status_code == 204
    assert (await send_pairing_request(http, deployment.ingress.url, bob, alice)).status_code == 204
    await wait_for_matches(sink, alice, bob)
    return alice, bob


async def test_pairing_works_with_encryption_and_the_history_is_unreadable_without_the_key(
    http: httpx.AsyncClient,
    encrypted: Deployment,
    sink: Sink,
    temporal: TemporalDevServer,
    temporal_client: Client,
) -> None:
    alice, bob = await pair(http, encrypted, sink)
    assert [e.data for e in sink.recorder.to(alice.endpoint_id)] == [alice.expected_match_from(bob)]
    assert [e.data for e in sink.recorder.to(bob.endpoint_id)] == [bob.expected_match_from(alice)]

    wid = workflow_id_for(alice.veraid_id, bob.veraid_id)
    history = await temporal_client.get_workflow_handle(wid).fetch_history()
    payloads = history_payloads(history)
    # The start input, both requests' signals and the deliveries' results at least.
    assert len(payloads) >= 4
    for payload in payloads:
        assert dict(payload.metadata) == {"encoding": ENCODING, KEY_ID_KEY: b"key-a"}
    bookkeeping = marker_bookkeeping(history)
    for marker, payload in bookkeeping:
        if marker == LOCAL_ACTIVITY_MARKER:
            assert set(json.loads(payload.data)) <= LOCAL_ACTIVITY_MARKER_FIELDS
    stored = b"".join(event.SerializeToString() for event in history.events)
    for needle in personal_data(alice, bob):
        if needle in (alice.veraid_id.encode(), bob.veraid_id.encode()):
            # Readable in the workflow id by design (the logs hold them too): not in payloads.
            assert not any(needle in p.data for p in payloads)
            assert not any(needle in p.data for _, p in bookkeeping)
        else:
            assert needle not in stored

    decoded = b"".join(p.data for p in await EncryptionCodec(ONLY_A).decode(payloads))
    for agent in (alice, bob):
        assert agent.veraid_id.encode() in decoded
        assert agent.endpoint_id.encode() in decoded
        assert base64.b64encode(agent.id_key) in decoded


def test_both_processes_say_at_start_up_that_payloads_are_encrypted(encrypted: Deployment) -> None:
    for log_file in (encrypted.worker.log_file, encrypted.ingress.process.log_file):
        assert log_file is not None
        [line] = [
            json.loads(line)
            for line in log_file.read_text().splitlines()
            if "Temporal payloads are encrypted" in line
        ]
        assert (line["activeKeyId"], line["keyIds"]) == ("key-a", ["key-a"])
        assert KEY_A.secret.hex() not in log_file.read_text()
        assert base64.b64encode(KEY_A.secret).decode() not in log_file.read_text()


async def test_a_client_without_the_key_cannot_read_a_query_result(
    http: httpx.AsyncClient,
    encrypted: Deployment,
    sink: Sink,
    temporal: TemporalDevServer,
    temporal_client: Client,
) -> None:
    alice, bob = await pair(http, encrypted, sink)
    wid = workflow_id_for(alice.veraid_id, bob.veraid_id)

    keyed = (await codec_client(temporal, ONLY_A)).get_workflow_handle(wid)
    status = await keyed.query("status", result_type=PairingStatus)
    assert status.matches == 1
    # Without a codec the encrypted result cannot even be converted, let alone read.
    with pytest.raises(KeyError, match="Unknown payload encoding binary/encrypted"):
        await temporal_client.get_workflow_handle(wid).query("status")
    # And a client with the wrong key fails on the key id instead of guessing.
    with pytest.raises(UnknownPayloadKey, match="'key-a'"):
        await (await codec_client(temporal, ONLY_B)).get_workflow_handle(wid).query("status")


async def wait_for_status(
    handle: WorkflowHandle[object, object], predicate: Callable[[PairingStatus], bool]
) -> None:
    """Until the pair's status says so: a deployment is stopped only once its work is done."""
    async with asyncio.timeout(30):
        while True:
            try:
                status = await handle.query("status", result_type=PairingStatus)
            except Exception:  # not started yet, or its first task not run
                status = None
            if status is not None and predicate(status):
                return
            await asyncio.sleep(0.2)


async def wait_for_pending(handle: WorkflowHandle[object, object], agent: Agent) -> None:
    await wait_for_status(handle, lambda status: status.pending_requesters == [agent.veraid_id])


async def wait_for_match(handle: WorkflowHandle[object, object]) -> None:
    await wait_for_status(
        handle, lambda status: status.matches == 1 and not status.pending_requesters
    )


async def test_rotation_an_old_workflow_completes_under_the_new_key(
    http: httpx.AsyncClient,
    start_worker: StartWorker,
    start_ingress: StartIngress,
    sink: Sink,
    temporal: TemporalDevServer,
    temporal_client: Client,
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    wid = workflow_id_for(alice.veraid_id, bob.veraid_id)
    before = deploy(start_worker, start_ingress, sink, "letro-encrypted-rotation", ONLY_A)
    try:
        assert (await send_pairing_request(http, before.ingress.url, alice, bob)).status_code == 204
        await wait_for_pending(
            (await codec_client(temporal, ONLY_A)).get_workflow_handle(wid), alice
        )
    finally:
        before.stop()

    after = deploy(start_worker, start_ingress, sink, "letro-encrypted-rotation", ROTATED)
    try:
        # The new worker replays the history written under key A, then carries on under B.
        assert (await send_pairing_request(http, after.ingress.url, bob, alice)).status_code == 204
        await wait_for_matches(sink, alice, bob)
        await wait_for_match((await codec_client(temporal, ROTATED)).get_workflow_handle(wid))
    finally:
        after.stop()
    assert [e.data for e in sink.recorder.to(alice.endpoint_id)] == [alice.expected_match_from(bob)]
    assert [e.data for e in sink.recorder.to(bob.endpoint_id)] == [bob.expected_match_from(alice)]

    # The run that matched (it then continued as new) holds the payloads of both deploys.
    description = await temporal_client.get_workflow_handle(wid).describe()
    matched = temporal_client.get_workflow_handle(
        wid, run_id=description.raw_description.workflow_execution_info.first_run_id
    )
    payloads = history_payloads(await matched.fetch_history())
    key_ids = [payload.metadata[KEY_ID_KEY].decode() for payload in payloads]
    # Everything before the restart under A, everything after under B.
    assert key_ids == sorted(key_ids)
    assert {"key-a", "key-b"} <= set(key_ids)
    under_a = [p for p in payloads if p.metadata[KEY_ID_KEY] == b"key-a"]
    under_b = [p for p in payloads if p.metadata[KEY_ID_KEY] == b"key-b"]
    only_b = EncryptionCodec(ONLY_B)
    assert await only_b.decode(under_b)  # B alone reads what was written under B...
    with pytest.raises(UnknownPayloadKey, match="'key-a'"):
        await only_b.decode(under_a)  # ...but not what A protects
    assert await EncryptionCodec(ROTATED).decode(payloads)


@pytest.mark.parametrize(
    ("wrong_keys", "complaint"),
    [
        (ONLY_B, "'key-a', which is not among the configured keys"),
        (None, "'key-a', but this process has no payload keys"),
    ],
    ids=["other-key", "no-keys"],
)
async def test_a_worker_missing_the_key_fails_loudly_and_loses_nothing(
    http: httpx.AsyncClient,
    start_worker: StartWorker,
    start_ingress: StartIngress,
    sink: Sink,
    temporal: TemporalDevServer,
    wrong_keys: PayloadKeyring | None,
    complaint: str,
) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    wid = workflow_id_for(alice.veraid_id, bob.veraid_id)
    queue = f"letro-encrypted-missing-key-{'none' if wrong_keys is None else 'other'}"
    first = deploy(start_worker, start_ingress, sink, queue, ONLY_A)
    try:
        assert (await send_pairing_request(http, first.ingress.url, alice, bob)).status_code == 204
        await wait_for_pending(
            (await codec_client(temporal, ONLY_A)).get_workflow_handle(wid), alice
        )
    finally:
        first.stop()

    # A worker deployed without A cannot read the history written under it: it must say so,
    # and neither skip the new request nor drop it (as the SDK drops a signal it cannot read).
    wrong_settings = {} if wrong_keys is None else key_settings(wrong_keys)
    wrong = start_worker(queue, K_SINK=sink.url, **wrong_settings)
    ingress = start_ingress(TEMPORAL_TASK_QUEUE=queue, **key_settings(ROTATED))
    try:
        assert (await send_pairing_request(http, ingress.url, bob, alice)).status_code == 204
        await until_logged(wrong.log_file, complaint)
        assert sink.recorder.to(alice.endpoint_id) == []
    finally:
        wrong.process.stop()
    # Given the key, a worker picks the pair up where it stood: the match is made, once.
    right = start_worker(queue, K_SINK=sink.url, **key_settings(ROTATED))
    try:
        # Longer than usual: Temporal retries a failed workflow task with a backoff.
        await sink.recorder.wait_for(
            lambda _: bool(
                sink.recorder.to(alice.endpoint_id) and sink.recorder.to(bob.endpoint_id)
            ),
            deadline=60,
        )
        await wait_for_match((await codec_client(temporal, ROTATED)).get_workflow_handle(wid))
    finally:
        right.process.stop()
        ingress.process.stop()
    assert [e.data for e in sink.recorder.to(alice.endpoint_id)] == [alice.expected_match_from(bob)]
    assert [e.data for e in sink.recorder.to(bob.endpoint_id)] == [bob.expected_match_from(alice)]


async def until_logged(log_file: Path, text: str, deadline: float = 20) -> None:
    async with asyncio.timeout(deadline):
        while True:
            if text in await asyncio.to_thread(log_file.read_text, errors="replace"):
                return
            await asyncio.sleep(0.2)


# --- The codec server ---------------------------------------------------------------------


@dataclass
class CodecServer:
    url: str
    process: ChildProcess


@pytest.fixture(scope="module")
def codec_server(stack_dir: Path) -> Iterator[CodecServer]:
    port = free_port()
    process = ChildProcess(
        "codec-server",
        python_module("codec_server"),
        env={
            **key_settings(ROTATED),
            "CODEC_SERVER_PORT": str(port),
            "CODEC_SERVER_TOKEN": CODEC_TOKEN,
            "LOG_LEVEL": "debug",
        },
        log_file=stack_dir / f"codec-server-{port}.log",
    )
    url = f"http://127.0.0.1:{port}"
    process.start(ready=http_answers(url))
    yield CodecServer(url, process)
    process.stop()


AUTHORISED = {"Authorization": f"Bearer {CODEC_TOKEN}", "X-Namespace": "default"}


def as_json(payloads: list[Payload]) -> dict[str, object]:
    return json_format.MessageToDict(Payloads(payloads=payloads))


def from_json(body: dict[str, object]) -> list[Payload]:
    return list(json_format.ParseDict(body, Payloads()).payloads)


@pytest.fixture
async def codec_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def test_the_codec_server_decodes_a_real_history(
    http: httpx.AsyncClient,
    encrypted: Deployment,
    sink: Sink,
    temporal_client: Client,
    codec_server: CodecServer,
    codec_http: httpx.AsyncClient,
) -> None:
    alice, bob = await pair(http, encrypted, sink)
    history = await temporal_client.get_workflow_handle(
        workflow_id_for(alice.veraid_id, bob.veraid_id)
    ).fetch_history()
    payloads = history_payloads(history)

    # Under a prefix, as the CLI's {namespace} templating makes it.
    response = await codec_http.post(
        f"{codec_server.url}/default/decode", json=as_json(payloads), headers=AUTHORISED
    )
    assert response.status_code == 200
    decoded = from_json(response.json())
    assert decoded == await EncryptionCodec(ONLY_A).decode(payloads)
    assert alice.veraid_id.encode() in b"".join(p.data for p in decoded)


async def test_the_codec_server_encodes_with_the_active_key(
    codec_server: CodecServer, codec_http: httpx.AsyncClient
) -> None:
    original = [Payload(metadata={"encoding": b"json/plain"}, data=b'"alice@applepie.rocks"')]
    encoded = await codec_http.post(
        f"{codec_server.url}/encode", json=as_json(original), headers=AUTHORISED
    )
    assert encoded.status_code == 200
    [payload] = from_json(encoded.json())
    assert payload.metadata[KEY_ID_KEY] == b"key-b"
    assert b"alice" not in payload.data
    decoded = await codec_http.post(
        f"{codec_server.url}/decode", json=encoded.json(), headers=AUTHORISED
    )
    assert from_json(decoded.json()) == original


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {CODEC_TOKEN}", CODEC_TOKEN, "Bearer"]
)
async def test_the_codec_server_refuses_requests_without_the_token(
    codec_server: CodecServer, codec_http: httpx.AsyncClient, authorization: str | None
) -> None:
    encrypted = EncryptionCodec(ONLY_A).encrypt(Payload(data=b"secret"))
    headers = {"Origin": UI_ORIGIN} | ({"Authorization": authorization} if authorization else {})
    response = await codec_http.post(
        f"{codec_server.url}/decode", json=as_json([encrypted]), headers=headers
    )
    assert response.status_code == 401
    assert b"secret" not in response.content
    # Still readable by the UI, so it can say why.
    assert response.headers["Access-Control-Allow-Origin"] == UI_ORIGIN


async def test_the_codec_server_answers_the_web_uis_cors_preflight(
    codec_server: CodecServer, codec_http: httpx.AsyncClient
) -> None:
    # As a browser sends it before the UI's POST: no Authorization on a preflight.
    response = await codec_http.options(
        f"{codec_server.url}/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"authorization", "content-type", "x-namespace"} <= allowed
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]  # caches must not reuse it for another origin

    elsewhere = await codec_http.options(
        f"{codec_server.url}/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert elsewhere.status_code == 403
    assert "Access-Control-Allow-Origin" not in elsewhere.headers

    ui_post = await codec_http.post(
        f"{codec_server.url}/decode",
        json=as_json([]),
        headers={**AUTHORISED, "Origin": UI_ORIGIN},
    )
    assert ui_post.status_code == 200
    assert ui_post.headers["Access-Control-Allow-Origin"] == UI_ORIGIN


UNKNOWN_KEY_PAYLOAD = EncryptionCodec(PayloadKeyring((PayloadKey("zz", bytes(32)),), "zz")).encrypt(
    Payload(data=b"secret")
)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        (b"{not json", "application/json", 400, "not a Payloads JSON object"),
        (b'{"payloads": 3}', "application/json", 400, "not a Payloads JSON object"),
        (b"[" * 100_000, "application/json", 400, "not a Payloads JSON object"),
        (
            json.dumps(as_json([UNKNOWN_KEY_PAYLOAD])).encode(),
            "application/json",
            400,
            "payload 0: payload encrypted with key 'zz', which is not among the configured keys",
        ),
        (b'{"payloads": []}', "text/plain", 415, "send application/json"),
    ],
)
async def test_the_codec_server_explains_what_it_cannot_transform(
    codec_server: CodecServer,
    codec_http: httpx.AsyncClient,
    body: bytes,
    content_type: str,
    status: int,
    detail: str,
) -> None:
    response = await codec_http.post(
        f"{codec_server.url}/decode",
        content=body,
        headers={**AUTHORISED, "Content-Type": content_type},
    )
    assert response.status_code == status
    assert detail in response.json()["detail"]
    assert codec_server.process.is_running()


async def test_the_codec_server_refuses_an_oversized_body_unread(
    codec_server: CodecServer,
) -> None:
    # Declared, never sent: the answer comes from the Content-Length alone.
    url = httpx.URL(codec_server.url)
    head = (
        f"POST /decode HTTP/1.1\r\nHost: {url.host}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {CODEC_TOKEN}\r\nContent-Length: {8 * 1024 * 1024}\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(head.encode())
        await writer.drain()
        async with asyncio.timeout(10):
            status_line = await reader.readline()
    finally:
        writer.close()
    assert status_line.split()[1] == b"413"


async def test_the_temporal_cli_shows_decrypted_payloads_through_the_codec_server(
    http: httpx.AsyncClient,
    encrypted: Deployment,
    sink: Sink,
    temporal: TemporalDevServer,
    codec_server: CodecServer,
) -> None:
    alice, bob = await pair(http, encrypted, sink)
    wid = workflow_id_for(alice.veraid_id, bob.veraid_id)

    def shown_payloads(*codec_options: str) -> list[Payload]:
        result = subprocess.run(
            [
                str(temporal.executable()), "workflow", "show", "--workflow-id", wid,
                "--address", temporal.address, "--output", "json",
                "--disable-config-env", "--disable-config-file", *codec_options,
            ],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return list(json_shaped_payloads(json.loads(result.stdout)))

    # Without the codec server the CLI shows ciphertext; with it, the original payloads.
    encodings = {p.metadata["encoding"] for p in shown_payloads()}
    assert ENCODING in encodings
    assert encodings <= {ENCODING, b"json/plain"}  # json/plain: local activity bookkeeping
    decoded = shown_payloads(
        "--codec-endpoint", codec_server.url, "--codec-auth", f"Bearer {CODEC_TOKEN}"
    )
    assert ENCODING not in {p.metadata["encoding"] for p in decoded}
    clear = b"".join(p.data for p in decoded)
    for agent in (alice, bob):
        assert agent.endpoint_id.encode() in clear
        assert base64.b64encode(agent.id_key) in clear


def json_shaped_payloads(value: object) -> Iterator[Payload]:
    """The payloads in the JSON form of a history: objects with ``metadata`` and ``data``."""
    if isinstance(value, list):
        for item in value:
            yield from json_shaped_payloads(item)
    elif isinstance(value, dict):
        if isinstance(value.get("metadata"), dict) and "encoding" in value["metadata"]:
            yield json_format.ParseDict(value, Payload(), ignore_unknown_fields=True)
            return
        for item in value.values():
            yield from json_shaped_payloads(item)
