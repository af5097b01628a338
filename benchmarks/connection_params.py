"""Connection parameters retrieval through the real stack, against local DNS and HTTPS servers.

    python -m benchmarks.connection_params [--requests 500] [--concurrency 16] [--json]

Each request asks for the parameters of its own domain, so that nothing the worker might
cache is reused: the DNS server (``infra.connparams_servers``, plain DNS over UDP) answers
its ``_awala-pdc._tcp`` SRV record with ``localhost`` and the port of the HTTPS server that
serves good parameters, under a CA the worker is given (``CONNECTION_PARAMS_CA_FILE``); the
worker is allowed to fetch from loopback (``CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES``).
Those servers run in this process, so their CPU is counted in ``benchmark``.

Each request is posted, then its lane waits for the ``connection-params`` reply (the exact
bytes served) at the sink before sending the next (``benchmarks.exchanges``). Printed:
requests/s, p50/p99 latency from the request POSTed to the reply at the sink, CPU per
request by component, and the DNS queries and HTTPS fetches per request. Each request must
be accepted and get exactly one reply; the exit status is 1 otherwise. The last line is a
one-line summary.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from benchmarks.exchanges.command_line import add_common_options, run_benchmark
from benchmarks.exchanges.workload import Exchange, Message, Module
from benchmarks.pairing.command_line import positive_int
from benchmarks.replies import ExpectedReply
from infra.connparams_servers import (
    LocalConnectionParamsServers,
    Scenario,
    Srv,
    SrvAnswer,
    make_node_connection_params,
    serve_connection_params_servers,
)
from letro.content_types import CONNECTION_PARAMS, CONNECTION_PARAMS_REQUEST

DOMAIN = "bench.letro.example"


class ConnectionParamsRetrieval(Module):
    name = "connection-params"
    title = "Connection params retrieval"
    rate_unit = "requests/s"

    def __init__(self) -> None:
        self._params = make_node_connection_params(f"endpoint.{DOMAIN}")
        self._domains: list[str] = []
        self._servers: LocalConnectionParamsServers | None = None

    @property
    def material(self) -> str:
        return (
            "connection-params requests, one domain each; local DNS (UDP) and HTTPS servers"
            " in this process"
        )

    def make(self, run_id: str, phase: str, count: int) -> list[Exchange]:
        return [self._exchange(f"cp{index}-{phase}-{run_id}.{DOMAIN}") for index in range(count)]

    def _exchange(self, domain: str) -> Exchange:
        # Served once the DNS server runs (start): the requests are made before it does.
        self._domains.append(domain)
        sender = "0" + hashlib.sha256(f"connection params {domain}".encode()).hexdigest()
        return Exchange(
            self.name,
            (Message(sender, CONNECTION_PARAMS_REQUEST, domain.encode()),),
            (ExpectedReply(sender, CONNECTION_PARAMS, self._params),),
        )

    async def start(self, exits: AsyncExitStack, work_dir: Path) -> None:
        servers = await exits.enter_async_context(
            serve_connection_params_servers(work_dir, self._params)
        )
        good = SrvAnswer((Srv(servers.port(Scenario.GOOD)),))
        for domain in self._domains:
            servers.dns.set(f"_awala-pdc._tcp.{domain}.", good)
        self._servers = servers

    def service_env(self) -> dict[str, str]:
        if self._servers is None:
            return {}
        return {
            "CONNECTION_PARAMS_RESOLVER": self._servers.plain_dns_resolver,
            "CONNECTION_PARAMS_CA_FILE": str(self._servers.ca.ca_file),
            # The servers are on loopback, which production refuses to fetch from.
            "CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES": "true",
        }

    async def counters(self) -> dict[str, int]:
        if self._servers is None:
            return {}
        return {
            "DNS queries": sum(self._servers.dns.queries.values()),
            "HTTPS fetches": sum(self._servers.https.requests.values()),
        }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.connection_params",
        description="Measure connection parameters retrieval through the real stack.",
    )
    add_common_options(parser, concurrency=16)
    parser.add_argument(
        "--requests", type=positive_int, default=500, help="requests in the measured phase"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_benchmark(
        args,
        benchmark="connection-params",
        title="connection params retrieval",
        make_modules=lambda _: [ConnectionParamsRetrieval()],
        counts=lambda _: {ConnectionParamsRetrieval.name: args.requests},
    )


if __name__ == "__main__":
    sys.exit(main())
