"""Test-only helpers of connection parameters retrieval, beside the servers in ``infra``.

The DNS and HTTPS servers themselves live in :mod:`infra.connparams_servers`, which the
benchmarks use too. What stays here only the tests need:

* :class:`CountingListener` accepts TCP connections on loopback and counts them (relaying
  them to a local port, or closing them), to prove that a refused target got none;
* :func:`ipv6_loopback_available`, to skip what needs ``::1`` on machines without it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CountingListener:
    """Counts the TCP connections accepted on each loopback address it listens on.

    With ``forward_to``, each connection is relayed to that port of 127.0.0.1 (say, an
    HTTPS server), so a fetch through the listener can succeed; without, it is closed.
    """

    forward_to: int | None = None
    ports: dict[str, int] = field(default_factory=dict)  # by listening address
    accepted: Counter[str] = field(default_factory=Counter)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted[writer.get_extra_info("sockname")[0]] += 1
        try:
            if self.forward_to is not None:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    "127.0.0.1", self.forward_to
                )
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except OSError:
            pass
        finally:
            writer.close()

    @property
    def total(self) -> int:
        return sum(self.accepted.values())


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def start_counting_listener(
    listener: CountingListener, hosts: tuple[str, ...] = ("127.0.0.1",)
) -> Callable[[], None]:
    """Listen on a free port of each of ``hosts`` (loopback only); return a closer."""
    servers = []
    for host in hosts:
        assert ipaddress.ip_address(host).is_loopback, host  # the tests' traffic stays local
        server = await asyncio.start_server(listener._handle, host, 0)
        listener.ports[host] = server.sockets[0].getsockname()[1]
        servers.append(server)

    def close() -> None:
        for server in servers:
            server.close()

    return close


def ipv6_loopback_available() -> bool:
    """Whether this machine can listen on and connect to ::1."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True
