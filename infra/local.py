"""Run the whole Letro server on this machine: ``python3.11 -m infra run``.

Starts the Temporal dev server (with its Web UI), mongod as a single-node replica set,
a local sink that logs every outgoing message, the development VeraId Authority, the
worker and the ingress. Data lives under ``./data`` (or ``LETRO_DATA_DIR``), so a restart
keeps it. Ctrl-C stops everything, newest first.

The ingress trusts the development Authority's DNSSEC root as well as the DNS root, so
accounts created here can pair with VeraId (``python3.11 -m infra demo`` shows it) while
real organisations' signatures still verify.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import httpx

import veraid
from infra.dev_authority import ds_rdata, trust_anchor_from_json, trust_anchor_text
from infra.processes import REPO_ROOT, ChildProcess, http_answers, python_module, python_script
from infra.services import MongoDB, TemporalDevServer

Service = TemporalDevServer | MongoDB | ChildProcess


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def veraid_trust_anchors(dev_anchor: veraid.TrustAnchor, configured: str | None = None) -> str:
    """``VERAID_TRUST_ANCHORS`` for the local stack: the development Authority's root added
    to those configured, or to the DNS root's when none are (so real organisations verify)."""
    base = configured or "; ".join(ds_rdata(anchor) for anchor in veraid.IANA_TRUST_ANCHORS)
    return f"{base}; {ds_rdata(dev_anchor)}"


def fetch_dev_trust_anchor(authority_url: str) -> veraid.TrustAnchor:
    """The running development Authority's trust anchor, as it serves it."""
    response = httpx.get(f"{authority_url}/_dev/trust-anchor", timeout=10)
    response.raise_for_status()
    return trust_anchor_from_json(response.json())


def main() -> None:
    data_dir = Path(os.environ.get("LETRO_DATA_DIR", REPO_ROOT / "data")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    ingress_port = _port("LETRO_INGRESS_PORT", 8080)
    sink_port = _port("LETRO_SINK_PORT", 8081)
    authority_port = _port("LETRO_AUTHORITY_PORT", 8082)
    authority_url = f"http://127.0.0.1:{authority_port}"
    authority_token = "local-dev-authority-token"
    temporal = TemporalDevServer(
        data_dir / "temporal",
        port=_port("LETRO_TEMPORAL_PORT", 7233),
        ui_port=_port("LETRO_TEMPORAL_UI_PORT", 8233),
    )
    mongodb = MongoDB(data_dir / "mongodb", port=_port("LETRO_MONGODB_PORT", 27017))
    env = {
        "VERSION": os.environ.get("VERSION", "local"),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "info"),
        "TEMPORAL_ADDRESS": temporal.address,
        "MONGODB_URI": mongodb.uri,
        "K_SINK": f"http://127.0.0.1:{sink_port}/",
        "HOST": "127.0.0.1",
        "PORT": str(ingress_port),
        # Account creation against the development VeraId Authority.
        "VAUTH_API_URL": authority_url,
        "VAUTH_API_TOKEN": authority_token,
    }
    authority_args = ["--port", str(authority_port), "--token", authority_token]
    authority_args += ["--key-dir", str(data_dir / "dev-authority")]
    helpers = [
        (
            ChildProcess("sink", python_module("infra.sink", "--port", str(sink_port)), env={}),
            f"http://127.0.0.1:{sink_port}/",
        ),
        (
            ChildProcess(
                "dev-authority", python_module("infra.dev_authority", *authority_args), env={}
            ),
            f"{authority_url}/",
        ),
    ]
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    started: list[Service] = []
    exit_code = 0
    try:
        print(f"Starting Temporal and MongoDB (data in {data_dir}, logs there too)…", flush=True)
        for service in (temporal, mongodb):
            service.start()
            started.append(service)
        for child, url in helpers:
            child.start(ready=http_answers(url))
            started.append(child)
        # Only now is the anchor known: the Authority makes (or loads) its keys at start-up.
        anchor = fetch_dev_trust_anchor(authority_url)
        env["VERAID_TRUST_ANCHORS"] = veraid_trust_anchors(
            anchor, os.environ.get("VERAID_TRUST_ANCHORS")
        )
        worker = ChildProcess("worker", python_script("worker.py"), env=env)
        ingress = ChildProcess("ingress", python_module("ingress"), env=env)
        worker.start()
        started.append(worker)
        ingress.start(ready=http_answers(f"http://127.0.0.1:{ingress_port}/"))
        started.append(ingress)
        print(_banner(ingress_port, sink_port, temporal.ui_url), flush=True)
        print(
            f"  Development VeraId Authority:     {authority_url}\n"
            f"  Its DNSSEC trust anchor:          {trust_anchor_text(anchor)}\n"
            "  (trusted by the ingress, with the DNS root's)\n",
            flush=True,
        )
        children = [item for item in started if isinstance(item, ChildProcess)]
        while not stopping.wait(1.0):
            dead = [child.name for child in children if not child.is_running()]
            if dead:
                print(f"{', '.join(dead)} exited unexpectedly; stopping", file=sys.stderr)
                exit_code = 1
                break
    except Exception as error:  # noqa: BLE001 - a clean message, whatever failed to start
        print(f"Could not start the stack: {error}", file=sys.stderr)
        exit_code = 1
    finally:
        print("Stopping…", flush=True)
        for item in reversed(started):
            item.stop()
    sys.exit(exit_code)


def _banner(ingress_port: int, sink_port: int, ui_url: str) -> str:
    return f"""
Letro server is running.
  Ingress (POST CloudEvents here):  http://127.0.0.1:{ingress_port}/
  Temporal Web UI:                  {ui_url}
  Outgoing messages are logged by the local sink on port {sink_port}.
See two agents create accounts and pair: python3.11 -m infra demo (in another terminal).
Press Ctrl-C to stop.
"""


if __name__ == "__main__":
    main()
