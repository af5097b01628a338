"""Pairing with the reference libraries, through the running service.

Contact pairing requests are made by ``@relaycorp/veraid`` (mock DNSSEC chain from
``@relaycorp/dnssec``, endpoint keys and ids from ``@relaycorp/relaynet-core``) through
``tests/interop/pairing_bridge.mjs``, which borrows the VeraId part from the veraid
package's bridge (``veraid/tests/interop``, with its own ``npm ci``), and
connection parameters by ``@relaycorp/relaynet-core`` (``PrivateEndpointConnParams`` with a
real PDA). A worker trusting the JS chain's root runs them end to end; requests whose
certificates ``@relaycorp/veraid`` issued with non-minimal serials go through the session's
ingress, on the DNSSEC chain of the organisation it trusts.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from infra.agents import VeraidOrg, spki
from letro.content_types import (
    CONTACT_PAIRING_AUTHORISATION,
    CONTACT_PAIRING_REQUEST,
    PAIRING_AUTH,
    PAIRING_AUTH_TMP,
    PAIRING_COMPLETION_TMP,
)
from tests.conftest import Ingress, Sink, StartIngress, StartWorker
from tests.helpers import binary_event_headers
from tests.test_cloudevents_interop import INTEROP_DIR, VERAID_INTEROP_DIR, requires_node

pytestmark = pytest.mark.integration

RELAYNET_DIR = INTEROP_DIR / "node_modules" / "@relaycorp" / "relaynet-core"
VERAID_JS_DIR = VERAID_INTEROP_DIR / "node_modules" / "@relaycorp" / "veraid"
TIMEOUT = 30.0
PAIRING_BRIDGE = "pairing_bridge.mjs"


def run_node(script: str, command: dict[str, Any]) -> Any:
    node = requires_node(RELAYNET_DIR)
    if script == PAIRING_BRIDGE:
        requires_node(VERAID_JS_DIR)
    completed = subprocess.run(
        [node, str(INTEROP_DIR / script)],
        input=json.dumps(command).encode(),
        capture_output=True,
        cwd=INTEROP_DIR,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"{script} failed: {completed.stderr.decode()}")
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def js_requests() -> dict[str, Any]:
    now = datetime.now(UTC)
    pairs = [("alice", "bob", "bob"), ("carol", "dave", "DAVE")]
    requests = []
    for first, second, typed_second in pairs:
        requests.append({"name": first, "target": f"{typed_second}@Letro.Example"})
        requests.append({"name": second, "target": f"{first}@letro.example"})
    result: dict[str, Any] = run_node(
        PAIRING_BRIDGE,
        {
            "command": "pairingRequests",
            "options": {
                "domain": "letro.example",
                "start": (now - timedelta(minutes=10)).isoformat(),
                "end": (now + timedelta(hours=2)).isoformat(),
                "requests": requests,
            },
        },
    )
    return result


@pytest.fixture(scope="module")
def js_ingress(
    js_requests: dict[str, Any], start_worker: StartWorker, start_ingress: StartIngress, sink: Sink
) -> Ingress:
    anchor = js_requests["trustAnchor"]
    setting = f"{anchor['keyTag']} {anchor['algorithm']} {anchor['digestType']} {anchor['digest']}"
    worker = start_worker("letro-js-interop", K_SINK=sink.url)
    return start_ingress(TEMPORAL_TASK_QUEUE=worker.task_queue, VERAID_TRUST_ANCHORS=setting)


async def test_js_pairing_requests_pair(
    http: httpx.AsyncClient, js_ingress: Ingress, sink: Sink, js_requests: dict[str, Any]
) -> None:
    requests = js_requests["requests"]
    for request in requests:
        response = await http.post(
            js_ingress.url,
            headers=binary_event_headers(
                sender_id=request["endpointId"], content_type=CONTACT_PAIRING_REQUEST
            ),
            content=base64.b64decode(request["bundle"]),
        )
        assert response.status_code == 204
    await sink.recorder.wait_for(
        lambda _: all(sink.recorder.to(r["endpointId"]) for r in requests), TIMEOUT
    )

    # Requests come in pairs: each side receives the other's bundle, byte for byte.
    for first, second in zip(requests[::2], requests[1::2], strict=True):
        [to_first] = sink.recorder.to(first["endpointId"])
        [to_second] = sink.recorder.to(second["endpointId"])
        assert to_first.content_type == CONTACT_PAIRING_REQUEST
        assert to_first.data == base64.b64decode(second["bundle"])
        assert to_second.data == base64.b64decode(first["bundle"])


async def test_relaynet_core_connection_params_reach_the_grantee(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink
) -> None:
    content_types = [PAIRING_AUTH, CONTACT_PAIRING_AUTHORISATION, PAIRING_AUTH_TMP]
    authorisations = run_node(
        "awala_bridge.mjs", {"command": "connectionParams", "count": len(content_types)}
    )
    for authorisation, content_type in zip(authorisations, content_types, strict=True):
        response = await http.post(
            ingress.url,
            headers=binary_event_headers(
                sender_id=authorisation["granterId"], content_type=content_type
            ),
            content=base64.b64decode(authorisation["params"]),
        )
        assert response.status_code == 204
    await sink.recorder.wait_for(
        lambda _: all(sink.recorder.to(a["granteeId"]) for a in authorisations), TIMEOUT
    )
    for authorisation, content_type in zip(authorisations, content_types, strict=True):
        params = base64.b64decode(authorisation["params"])
        [forwarded] = sink.recorder.to(authorisation["granteeId"])
        if content_type == PAIRING_AUTH_TMP:
            assert forwarded.content_type == PAIRING_COMPLETION_TMP
            assert forwarded.data == f"{authorisation['granterId']},".encode() + base64.b64encode(
                params
            )
        else:
            assert (forwarded.content_type, forwarded.data) == (content_type, params)
        assert sink.recorder.to(authorisation["granterId"]) == []


async def test_js_requests_with_non_minimal_serials_pair(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink, veraid_org: VeraidOrg
) -> None:
    """One certificate in 512 that veraid-js issues has a serial number that is not minimal
    DER: such users (or organisations) must pair like everyone else."""
    alice, bob = (f"{name}-{uuid.uuid4().hex[:10]}" for name in ("alice", "bob"))
    pkcs8 = veraid_org.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    # veraid-js issues the certificates with the key of the organisation the session's ingress
    # trusts, and its DNSSEC chain, until each has a non-minimal serial.
    result = run_node(
        PAIRING_BRIDGE,
        {
            "command": "pairingRequests",
            "options": {
                "domain": veraid_org.domain,
                "organisation": {
                    "key": {"pkcs8": _b64(pkcs8), "spki": _b64(spki(veraid_org.key))},
                    "dnssecChain": [_b64(response) for response in veraid_org.chain.responses],
                },
                "nonMinimalSerials": True,
                "start": veraid_org.period.start.isoformat(),
                "end": veraid_org.period.end.isoformat(),
                "requests": [
                    {"name": alice, "target": f"{bob}@{veraid_org.domain}"},
                    {"name": bob, "target": f"{alice}@{veraid_org.domain}"},
                ],
            },
        },
    )
    requests = result["requests"]
    assert result["organisationSerialNonMinimal"]
    assert all(request["memberSerialNonMinimal"] for request in requests)

    for request in requests:
        response = await http.post(
            ingress.url,
            headers=binary_event_headers(
                sender_id=request["endpointId"], content_type=CONTACT_PAIRING_REQUEST
            ),
            content=base64.b64decode(request["bundle"]),
        )
        assert response.status_code == 204
    await sink.recorder.wait_for(
        lambda _: all(sink.recorder.to(r["endpointId"]) for r in requests), TIMEOUT
    )

    first, second = requests
    [to_first] = sink.recorder.to(first["endpointId"])
    [to_second] = sink.recorder.to(second["endpointId"])
    assert (to_first.content_type, to_second.content_type) == (CONTACT_PAIRING_REQUEST,) * 2
    assert to_first.data == base64.b64decode(second["bundle"])
    assert to_second.data == base64.b64decode(first["bundle"])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
