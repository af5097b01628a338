"""Interoperability of ``awala`` with the official CloudEvents JavaScript SDK.

The Awala Internet Endpoint and the original Letro server use the ``cloudevents`` npm
package, so real bytes are exchanged with it in both directions through
``tests/interop/cloudevents_bridge.mjs``. Its dependencies are installed with
``npm ci --prefix tests/interop``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dateutil.parser import isoparse

from awala.cloudevents import event_from_http, event_to_binary_http
from awala.service_messages import (
    INCOMING_SERVICE_MESSAGE_TYPE,
    OUTGOING_SERVICE_MESSAGE_TYPE,
    IncomingServiceMessage,
    OutgoingServiceMessage,
    default_expiry,
    incoming_message_from_event,
    outgoing_message_to_event,
)

INTEROP_DIR = Path(__file__).parent / "interop"
# The veraid package's own JS bridge and packages (npm ci --prefix veraid/tests/interop).
VERAID_INTEROP_DIR = Path(__file__).parent.parent / "veraid" / "tests" / "interop"
BRIDGE = INTEROP_DIR / "cloudevents_bridge.mjs"
SDK_DIR = INTEROP_DIR / "node_modules" / "cloudevents"

ON_CI = os.environ.get("CI", "").lower() == "true"

PARCEL_ID = "8c7c2d5e-1b1f-4e55-b1b4-9f9a2c0f3e77"
AGENT_ENDPOINT_ID = "0" + "5c" * 32
SERVER_ENDPOINT_ID = "0" + "e7" * 32
PAIRING_REQUEST_TYPE = "application/vnd.relaycorp.letro.pairing-request-tmp"


def requires_node(package_dir: Path = SDK_DIR) -> str:
    """The path to ``node``, if it and the npm package in ``package_dir`` (by default the
    CloudEvents SDK) are installed; else skip, or fail on CI."""
    node = shutil.which("node")
    if node is None:
        reason = "Node.js is not installed"
    elif not (package_dir / "package.json").is_file():
        veraid = package_dir.is_relative_to(VERAID_INTEROP_DIR)
        prefix = "veraid/tests/interop" if veraid else "tests/interop"
        reason = f"{package_dir.name} is not installed: npm ci --prefix {prefix}"
    else:
        return node
    if ON_CI:
        pytest.fail(f"{reason} (CI=true: a missing tool is a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def node() -> str:
    return requires_node()


def _run_bridge(node: str, command: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        [node, str(BRIDGE)],
        input=json.dumps(command).encode(),
        capture_output=True,
        cwd=INTEROP_DIR,
        timeout=60,
        check=False,
    )
    output = completed.stdout.decode()
    if completed.returncode != 0:
        pytest.fail(f"The JS bridge failed: {output} {completed.stderr.decode()}")
    result: dict[str, Any] = json.loads(output)
    return result


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- The Awala Internet Endpoint (JS SDK) -> us ----------------------------------------

INCOMING_CONTENTS = {
    "non-UTF-8 binary": bytes(range(256)) + b"\xff\xfe\xc3(",
    "UTF-8 CSV": (
        "alice@letro.app,zoë@letro.app," + _b64(b"\x30\x82\x01\x22identity-key\x00\xff") + ",Zoë ✓"
    ).encode(),
    "JSON-looking": b'{"not": "to be parsed"}',
    "empty": b"",
}


@pytest.mark.parametrize("mode", ["binary", "structured"])
@pytest.mark.parametrize("content", list(INCOMING_CONTENTS.values()), ids=list(INCOMING_CONTENTS))
def test_incoming_event_emitted_by_the_js_sdk(node: str, content: bytes, mode: str) -> None:
    time = "2024-03-10T09:08:07.654Z"
    expiry = "2024-09-10T09:08:07.654Z"
    emitted = _run_bridge(
        node,
        {
            "command": "emit",
            "attributes": {
                "id": PARCEL_ID,
                "type": INCOMING_SERVICE_MESSAGE_TYPE,
                "source": AGENT_ENDPOINT_ID,
                "subject": SERVER_ENDPOINT_ID,
                "datacontenttype": PAIRING_REQUEST_TYPE,
                "time": time,
                "expiry": expiry,
            },
            "data_base64": _b64(content),
            "mode": mode,
        },
    )
    headers: dict[str, str] = emitted["headers"]
    body = base64.b64decode(emitted["body_base64"])

    event = event_from_http(headers, body)

    assert incoming_message_from_event(event) == IncomingServiceMessage(
        parcel_id=PARCEL_ID,
        sender_id=AGENT_ENDPOINT_ID,
        recipient_id=SERVER_ENDPOINT_ID,
        content_type=PAIRING_REQUEST_TYPE,
        content=content,
    )
    assert event.get_specversion() == "1.0"
    assert event.get_time() == isoparse(time)
    assert event.get_extension("expiry") == expiry


# --- Us -> the Awala Internet Endpoint (JS SDK) ----------------------------------------

CREATION = datetime(2024, 2, 29, 23, 59, 58, 987654, tzinfo=UTC)

OUTGOING_CONTENTS = {
    "binary": ("application/vnd.relaycorp.letro.pairing-match-tmp", bytes(range(255, -1, -1))),
    "UTF-8 text": ("text/plain; charset=utf-8", "Zoë ✓ paired with alice@letro.app\n".encode()),
    "JSON": ("application/json", b'{"bytes": "must stay bytes"}'),
    "empty": ("application/vnd.relaycorp.letro.pairing-match-tmp", b""),
}


@pytest.mark.parametrize(
    ("content_type", "content"), list(OUTGOING_CONTENTS.values()), ids=list(OUTGOING_CONTENTS)
)
def test_outgoing_event_received_by_the_js_sdk(
    node: str, content_type: str, content: bytes
) -> None:
    message = OutgoingServiceMessage(
        event_id="0f3b4f5e-52a5-4bb5-8a0e-6a0c3b3f2d11",
        sender_id=SERVER_ENDPOINT_ID,
        recipient_id=AGENT_ENDPOINT_ID,
        content_type=content_type,
        content=content,
        creation_time=CREATION,
        expiry_time=default_expiry(CREATION),
    )
    headers, body = event_to_binary_http(outgoing_message_to_event(message))

    received = _run_bridge(
        node, {"command": "receive", "headers": headers, "body_base64": _b64(body)}
    )

    attributes = received["attributes"]
    assert attributes["specversion"] == "1.0"
    assert attributes["type"] == OUTGOING_SERVICE_MESSAGE_TYPE
    assert attributes["id"] == message.event_id
    assert attributes["source"] == message.sender_id
    assert attributes["subject"] == message.recipient_id
    assert attributes["datacontenttype"] == content_type
    # The SDK silently replaces an unparseable time with the current one.
    assert isoparse(attributes["time"]) == CREATION - timedelta(microseconds=654)
    assert received["extensions"] == {"expiry": "2024-05-29T23:59:58.987Z"}
    assert isoparse(received["extensions"]["expiry"]) == default_expiry(CREATION).replace(
        microsecond=987000
    )
    assert received["data_type"] == "binary"
    assert base64.b64decode(received["data_base64"]) == content
