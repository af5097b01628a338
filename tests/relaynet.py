"""Connection parameters made by ``@relaycorp/relaynet-core``, the reference implementation.

``tests/interop/connection_params.mjs`` builds a ``NodeConnectionParams`` with fresh keys
and serialises it; its dependencies come from ``npm ci --prefix tests/interop``.
"""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass

import pytest

from tests.test_cloudevents_interop import INTEROP_DIR, requires_node

RELAYNET_CORE_DIR = INTEROP_DIR / "node_modules" / "@relaycorp" / "relaynet-core"
GENERATOR = INTEROP_DIR / "connection_params.mjs"


@dataclass(frozen=True)
class GeneratedParams:
    """The DER relaynet-core produced and the parts it was given."""

    der: bytes
    internet_address: str
    identity_key: bytes
    session_key_id: bytes
    session_public_key: bytes


def generate_connection_params(internet_address: str) -> GeneratedParams:
    """Run relaynet-core to serialise fresh connection parameters (skips without Node)."""
    node = requires_node(RELAYNET_CORE_DIR)
    completed = subprocess.run(
        [node, str(GENERATOR)],
        input=json.dumps({"internetAddress": internet_address}).encode(),
        capture_output=True,
        cwd=INTEROP_DIR,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"relaynet-core failed: {completed.stdout!r} {completed.stderr!r}")
    result = json.loads(completed.stdout)
    return GeneratedParams(
        der=base64.b64decode(result["der_base64"]),
        internet_address=internet_address,
        identity_key=base64.b64decode(result["identity_key_base64"]),
        session_key_id=base64.b64decode(result["session_key_id_base64"]),
        session_public_key=base64.b64decode(result["session_public_key_base64"]),
    )
