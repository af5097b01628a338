"""Serving a Quart app with Hypercorn until SIGTERM or SIGINT: the ingress and the codec server."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart


def serve_until_stopped(
    app: Quart,
    bind: str,
    *,
    graceful_timeout: float,
    on_start: Callable[[], None] = lambda: None,
    on_stop: Callable[[], None] = lambda: None,
) -> None:
    """Serve ``app`` on ``bind`` (``host:port``) until the process is asked to stop.

    A stop lets requests in flight finish for up to ``graceful_timeout`` seconds.
    """
    config = Config()
    config.bind = [bind]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    # Hypercorn's own handler would print each line a second time, unformatted.
    config.errorlog = logging.getLogger("hypercorn.error")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        on_start()
        await serve(app, config, shutdown_trigger=stop.wait)
        on_stop()

    asyncio.run(run())
