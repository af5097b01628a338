"""Run the ingress: ``python -m ingress``. Configuration comes from the environment."""

from __future__ import annotations

import sys

import structlog

from config import ConfigError, load_settings
from ingress.app import create_app
from logs import configure_logging
from serving import serve_until_stopped

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
    bind = f"{settings.host}:{settings.port}"
    serve_until_stopped(
        create_app(settings),
        bind,
        graceful_timeout=10.0,
        on_start=lambda: logger.info(
            "Ingress listening", bind=bind, transport=settings.transport.value
        ),
        on_stop=lambda: logger.info("Ingress stopped"),
    )


if __name__ == "__main__":
    main()
