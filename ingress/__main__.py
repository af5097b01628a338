"""Run the ingress: ``python -m ingress``. Configuration comes from the environment."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import structlog
from hypercorn.asyncio import serve
from hypercorn.config import Config

from config import ConfigError, load_settings
from ingress.app import create_app
from logs import configure_logging

logger = structlog.get_logger("ingress")


def main() -> None:
    try:
        settings = load_settings("ingress")
    except ConfigError as error:
        print(f"letro-server ingress: {error}", file=sys.stderr)
        sys.exit(2)
    configure_logging(
        level=settings.log_level,
        log_format=settings.log_format,
        target=settings.log_target,
        google_project=settings.google_project,
        component="ingress",
        version=settings.version,
    )
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.graceful_timeout = 10.0
    config.accesslog = None
    # Hypercorn's own handler would print each line a second time, unformatted.
    config.errorlog = logging.getLogger("hypercorn.error")
    app = create_app(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        logger.info("Ingress listening", bind=config.bind[0], transport=settings.transport.value)
        await serve(app, config, shutdown_trigger=stop.wait)
        logger.info("Ingress stopped")

    asyncio.run(run())


if __name__ == "__main__":
    main()
