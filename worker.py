"""The Temporal worker: runs the workflows and activities of the Letro server.

Start it with ``python worker.py``; configuration comes from the environment (see the
README). SIGTERM or SIGINT stop it gracefully: it stops polling, lets running tasks
finish, and exits.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from datetime import timedelta

import structlog
from temporalio.worker import PollerBehaviorAutoscaling, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import undelivered
from activities.accounts import AccountActivities, AccountSagaOptions
from activities.connection_params import ConnectionParamsActivities
from activities.connection_params_clients import (
    HttpsParamsFetcher,
    make_fetch_client,
    make_http_client,
    make_resolver,
)
from activities.egress import Egress
from activities.pairing_match import MatchDelivery
from activities.pairing_store import COLLECTION_NAME, PairingRequestStore, ensure_indexes
from activities.sinks import make_sink
from activities.undelivered import UndeliveredMessages
from activities.veraid_authority import AuthorityClient, GoogleIdToken, StaticToken, TokenSource
from config import AccountSettings, ConfigError, Settings, load_settings
from connections import connect_mongo, connect_temporal, database
from letro.account_names import NamingRules
from logs import configure_logging
from metrics import prometheus_runtime
from workflows.account_creation import AccountCreation
from workflows.connection_params import ConnectionParamsRetrieval
from workflows.forwarding import ForwardServiceMessage
from workflows.legacy_pairing import LegacyContactPairing
from workflows.veraid_pairing import ContactPairingRefusal, VeraidContactPairing

logger = structlog.get_logger("worker")

WORKFLOWS = [
    LegacyContactPairing,
    VeraidContactPairing,
    ContactPairingRefusal,
    ForwardServiceMessage,
    ConnectionParamsRetrieval,
    AccountCreation,
]
# Our own packages hold no mutable module state and do no I/O at import, so the workflow
# sandbox may share them instead of re-importing them (and rebuilding every dataclass) for
# each new workflow run: profiled, that re-import was a fifth of the worker's CPU time.
SANDBOX_PASSTHROUGH = ("workflows", "activities", "contract", "awala", "letro", "veraid")
# How many task polls the worker keeps open: as many as the backlog needs, the server says
# (Temporal's recommended setting; server 1.28 or later, which the dev server is). The SDK's
# default, five polls of which one is on the non-sticky queue, caps how fast a worker picks
# up the first task of a new workflow, and every pair is a new workflow: measured in the
# VeraId pairing benchmark, that cap held a default worker to ~55 bare workflows/s (~90
# with these pollers) and queued a closed loop's pairs for 9 s (0.4 s with these) at the
# same matched rate. The benchmark's floor worker polls the same way (benchmarks.floor).
TASK_POLLERS = PollerBehaviorAutoscaling()


def workflow_runner() -> SandboxedWorkflowRunner:
    """How the worker runs its sandboxed workflows; the replay tests run histories the same way."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*SANDBOX_PASSTHROUGH)
    )


def tune_garbage_collector() -> None:
    """Keep the worker's garbage-collection pauses short; call once everything is loaded.

    A full collection stops the event loop, and with it every workflow task and local
    activity. Measured under the pairing benchmark, full collections took 140-270 ms:
    they traversed the ~105,000 objects of the imported code, the cached workflows, and
    ~40,000 objects of evicted workflows at a time (an evicted workflow leaves reference
    cycles behind, which only a full collection frees). Freezing what exists at start-up
    takes the imported code out of every collection, and allowing a full collection
    after every second middle one instead of every tenth keeps the batches of cyclic
    garbage small, for a few percent more collector time.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 2)


def _required(value: str | None, variable: str) -> str:
    # load_settings("worker") refuses a configuration without it; this guards against a bug.
    if value is None:
        raise ConfigError([f"{variable} is required"])
    return value


def make_authority_client(accounts: AccountSettings) -> AuthorityClient | None:
    if accounts.vauth_api_url is None:
        logger.warning("VAUTH_API_URL is not set: account creation requests will be refused")
        return None
    tokens: TokenSource
    if accounts.vauth_api_audience:
        tokens = GoogleIdToken(accounts.vauth_api_audience)
    else:
        tokens = StaticToken(_required(accounts.vauth_api_token, "VAUTH_API_TOKEN"))
    return AuthorityClient(accounts.vauth_api_url, tokens)


def make_account_activities(
    accounts: AccountSettings, authority: AuthorityClient | None
) -> AccountActivities:
    rules = NamingRules(
        max_length=accounts.max_name_length,
        reserved_words=accounts.reserved_words,
        domains_by_locale=dict(accounts.domains_by_locale),
        fallback_domain=accounts.fallback_domain,
    )
    return AccountActivities(
        authority,
        AccountSagaOptions(
            rules=rules,
            name_attempts=accounts.name_attempts,
            authority_retry_seconds=accounts.authority_retry_seconds,
            dedup_window_seconds=accounts.dedup_window_seconds,
            authority_retry_max_interval_seconds=accounts.authority_retry_max_interval_seconds,
        ),
    )


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    # The runtime's Prometheus endpoint doubles as the liveness probe (infra/deploy/).
    runtime = prometheus_runtime(settings.metrics_port) if settings.metrics_port else None
    client = await connect_temporal(settings.temporal, runtime=runtime)
    mongo = connect_mongo(settings.mongodb)
    db = database(mongo, settings.mongodb)
    await ensure_indexes(db, settings.pairing_request_ttl)
    await undelivered.ensure_indexes(db)
    sink = make_sink(
        settings.transport, sink_url=settings.sink_url, pubsub_topic=settings.pubsub_topic
    )
    egress = Egress(sink, retry_window=settings.egress_retry_window)
    store = PairingRequestStore(db[COLLECTION_NAME])
    matches = MatchDelivery(store, egress)
    kept = UndeliveredMessages(db[undelivered.COLLECTION_NAME])
    params_settings = settings.connection_params
    http = make_http_client(settings.version, params_settings.ca_file)
    fetch_http = make_fetch_client(settings.version, params_settings.ca_file)
    connection_params = ConnectionParamsActivities(
        make_resolver(params_settings.resolver, http),
        HttpsParamsFetcher(fetch_http),
        allow_private_addresses=params_settings.allow_private_addresses,
    )
    if params_settings.allow_private_addresses:
        logger.warning(
            "Connection params may be fetched from private addresses"
            " (CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES): for development only"
        )
    authority = make_authority_client(settings.accounts)
    accounts = make_account_activities(settings.accounts, authority)
    worker = Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=WORKFLOWS,
        activities=[
            egress.emit_service_message,
            egress.retry_window,
            kept.keep,
            store.store,
            store.delete,
            matches.deliver,
            connection_params.resolve,
            connection_params.fetch,
            accounts.name_account,
            accounts.create_member,
            accounts.import_public_key,
            accounts.get_member_bundle,
            accounts.delete_member,
        ],
        graceful_shutdown_timeout=timedelta(seconds=10),
        # A larger cache means longer full garbage collections; a smaller one, more
        # replays of workflows evicted while a backlog waits (measured: a cache of 250
        # cost the VeraId benchmark a fifth of its throughput).
        max_cached_workflows=settings.temporal.max_cached_workflows,
        workflow_runner=workflow_runner(),
        workflow_task_poller_behavior=TASK_POLLERS,
        activity_task_poller_behavior=TASK_POLLERS,
    )
    tune_garbage_collector()
    try:
        async with worker:
            logger.info(
                "Worker started",
                temporalAddress=settings.temporal.address,
                namespace=settings.temporal.namespace,
                taskQueue=settings.temporal.task_queue,
                transport=settings.transport.value,
            )
            await stop.wait()
            logger.info("Worker stopping")
    finally:
        await http.aclose()
        await fetch_http.aclose()
        if authority is not None:
            await authority.close()
        await sink.close()
        await mongo.close()
    logger.info("Worker stopped")


def main() -> None:
    try:
        settings = load_settings("worker")
    except ConfigError as error:
        print(f"letro-server worker: {error}", file=sys.stderr)
        sys.exit(2)
    configure_logging(
        level=settings.log_level,
        log_format=settings.log_format,
        target=settings.log_target,
        google_project=settings.google_project,
        component="worker",
        version=settings.version,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_worker(settings, stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
