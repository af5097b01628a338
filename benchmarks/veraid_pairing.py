"""VeraId contact pairing through the whole stack, with real SignatureBundles.

``python -m benchmarks.veraid_pairing --pairs 100 --concurrency 32`` starts its own stack
(Temporal dev server, mongod, one worker, one ingress) whose worker trusts a mock DNSSEC
root, sends both requests of every pair, and prints accepted requests/s, matched pairs/s
and the match latency (from the second request's 204 to both bundles reaching the sink).
Every request is verified by the worker, so this measures verification inside the service,
not just the plumbing. The bundles are made before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx

from benchmarks.stack import serve_sink, start_local_stack
from infra.services import free_port
from infra.sink import EventRecorder
from letro.content_types import CONTACT_PAIRING_REQUEST
from tests.helpers import binary_event_headers
from tests.pairing_helpers import VeraidAgent, make_org, new_veraid_agent

_MATCH_TIMEOUT = 600.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(pairs: int, concurrency: int) -> None:
    org = make_org()
    began = time.monotonic()
    agents = [(new_veraid_agent(org, "alice"), new_veraid_agent(org, "bob")) for _ in range(pairs)]
    requests: list[tuple[int, VeraidAgent, bytes]] = []
    for index, (alice, bob) in enumerate(agents):
        requests.append((index, alice, alice.pairing_request(bob.veraid_id)))
        requests.append((index, bob, bob.pairing_request(alice.veraid_id)))
    print(f"Made {len(requests)} requests in {time.monotonic() - began:.1f} s")

    anchor = org.trust_anchor_setting
    recorder = EventRecorder()
    with tempfile.TemporaryDirectory(prefix="letro-veraid-pairing-") as scratch:
        async with AsyncExitStack() as exits:
            sink_url = await serve_sink(exits, recorder, free_port())
            stack = await start_local_stack(
                exits, Path(scratch), sink_url, {"VERAID_TRUST_ANCHORS": anchor}
            )
            accepted_at: dict[int, float] = {}
            limit = asyncio.Semaphore(concurrency)
            async with httpx.AsyncClient(timeout=30) as http:

                async def send(index: int, agent: VeraidAgent, bundle: bytes) -> None:
                    async with limit:
                        headers = binary_event_headers(
                            sender_id=agent.endpoint_id, content_type=CONTACT_PAIRING_REQUEST
                        )
                        response = await http.post(
                            stack.ingress_url, headers=headers, content=bundle
                        )
                    response.raise_for_status()
                    accepted_at[index] = time.monotonic()  # the later of the two wins

                start = time.monotonic()
                await asyncio.gather(*(send(*request) for request in requests))
                sent = time.monotonic()
                await recorder.wait_for(lambda events: len(events) >= 2 * pairs, _MATCH_TIMEOUT)
                done = time.monotonic()

    received = {event.subject: event.received_at for event in recorder.events}
    latencies = [
        max(received[alice.endpoint_id], received[bob.endpoint_id]) - accepted_at[index]
        for index, (alice, bob) in enumerate(agents)
    ]
    print(f"Accepted {len(requests) / (sent - start):.1f} requests/s")
    print(f"Matched {pairs / (done - start):.1f} pairs/s")
    print(
        "Match latency: "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {_percentile(latencies, 0.95) * 1000:.0f} ms, "
        f"p99 {_percentile(latencies, 0.99) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.pairs, arguments.concurrency))


if __name__ == "__main__":
    main()
