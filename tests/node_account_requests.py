"""Account requests made by ``tests/interop/account_request.mjs`` with Node's crypto."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

INTEROP_DIR = Path(__file__).parent / "interop"
SCRIPT = INTEROP_DIR / "account_request.mjs"


def node_account_request(
    node: str, user_name: str, locale: str, hash_name: str = "sha256", modulus_length: int = 2048
) -> tuple[bytes, bytes]:
    """(DER AccountRequestSignature, SPKI DER of its RSA-PSS key with parameters)."""
    command = {
        "userName": user_name,
        "locale": locale,
        "hash": hash_name,
        "modulusLength": modulus_length,
    }
    completed = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(command).encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    output = json.loads(completed.stdout)
    return base64.b64decode(output["request"]), base64.b64decode(output["publicKey"])
