"""Clients for the backing services, built from the settings in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime

from config import DEFAULT_DATABASE, MongoSettings, TemporalSettings
from payload_codec import data_converter

logger = structlog.get_logger("connections")

# As the original server: fail fast when MongoDB is away, so the broker retries later.
MONGO_TIMEOUT_MS = 3000


async def connect_temporal(
    settings: TemporalSettings, *, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    """Connect to Temporal; with ``lazy`` the first call, not this one, opens the connection.

    ``runtime``: the SDK runtime to use (one exporting metrics, say); the default otherwise.
    With payload keys configured, the client (and a worker built on it) encrypts every
    payload it sends and decrypts every one it receives.
    """
    if settings.payload_keys is not None:
        # Said at start-up: an operator checks at a glance which key new payloads get.
        logger.info(
            "Temporal payloads are encrypted",
            activeKeyId=settings.payload_keys.active_key_id,
            keyIds=list(settings.payload_keys.key_ids),
        )
    return await Client.connect(
        **temporal_connect_options(settings),
        lazy=lazy,
        runtime=runtime,
        data_converter=data_converter(settings.payload_keys),
    )


def temporal_connect_options(
    settings: TemporalSettings, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Where and how to reach Temporal, as the SDK's own client configuration says.

    ``temporalio.envconfig`` reads a TOML profile (``TEMPORAL_CONFIG_FILE``, chosen by
    ``TEMPORAL_PROFILE``) and the ``TEMPORAL_*`` variables, whose names are the ones
    config.py validates; it also covers what config.py does not: the server's CA
    certificate, the TLS server name and gRPC metadata. The validated settings fill in
    what neither says. ``environ`` replaces the process's environment (for tests).
    """
    options = dict(ClientConfigProfile.load(override_env_vars=environ).to_client_connect_config())
    options.setdefault("target_host", settings.address)
    options.setdefault("namespace", settings.namespace)
    options.setdefault("tls", settings.tls)
    return options


def connect_mongo(settings: MongoSettings) -> AsyncMongoClient[dict[str, Any]]:
    """A MongoDB client; pymongo connects in the background on first use."""
    options: dict[str, Any] = {
        "serverSelectionTimeoutMS": MONGO_TIMEOUT_MS,
        "connectTimeoutMS": MONGO_TIMEOUT_MS,
        "maxIdleTimeMS": 60_000,
    }
    if settings.user:
        options["username"] = settings.user
    if settings.password:
        options["password"] = settings.password
    return AsyncMongoClient(settings.uri, **options)


def database(
    client: AsyncMongoClient[dict[str, Any]], settings: MongoSettings
) -> AsyncDatabase[dict[str, Any]]:
    if settings.database:
        return client[settings.database]
    return client.get_default_database(default=DEFAULT_DATABASE)
