"""Clients for the backing services, built from the settings in one place."""

from __future__ import annotations

from typing import Any

import structlog
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

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
    tls: bool | TLSConfig = settings.tls
    if settings.tls_client_cert_path and settings.tls_client_key_path:
        tls = TLSConfig(
            client_cert=settings.tls_client_cert_path.read_bytes(),
            client_private_key=settings.tls_client_key_path.read_bytes(),
        )
    if settings.payload_keys is not None:
        # Said at start-up: an operator checks at a glance which key new payloads get.
        logger.info(
            "Temporal payloads are encrypted",
            activeKeyId=settings.payload_keys.active_key_id,
            keyIds=list(settings.payload_keys.key_ids),
        )
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        api_key=settings.api_key,
        tls=tls,
        lazy=lazy,
        runtime=runtime,
        data_converter=data_converter(settings.payload_keys),
    )


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
