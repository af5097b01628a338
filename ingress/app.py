"""The ingress web application: ``POST /`` for CloudEvents, ``GET|HEAD /`` for health.

A message is acknowledged (204) only once Temporal has durably accepted it; if Temporal
cannot be reached the answer is 503 so the broker redelivers it later. An envelope that
can never succeed gets 400 with a JSON body saying why.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from cloudevents.core.base import BaseCloudEvent
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from quart import Quart, Response, g, request
from temporalio.client import Client
from temporalio.common import MetricMeter, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from werkzeug.exceptions import HTTPException

from awala.cloudevents import event_from_http, event_from_pubsub_push
from awala.errors import InvalidCloudEvent, InvalidServiceMessage
from awala.service_messages import IncomingServiceMessage, incoming_message_from_event
from config import Settings, Transport
from connections import connect_mongo, connect_temporal, database
from ingress.parcel_ledger import COLLECTION_NAME as TAKEN_PARCELS
from ingress.parcel_ledger import ParcelLedger
from ingress.push_auth import push_authentication
from ingress.routing import (
    ContentTooLarge,
    HandOver,
    Ignore,
    RoutingOptions,
    SignalWithStart,
    StartOnce,
    UnsupportedContentType,
    route,
)
from logs import trace_fields
from metrics import IngressMetrics, prometheus_runtime

logger = structlog.get_logger("ingress")

# The largest service message we accept is 32 KiB (``letro.content_types``); a Pub/Sub push
# wraps it in base64 and JSON. Anything larger is refused before it is read.
MAX_CONTENT_LENGTH = 64 * 1024
# Within the broker's push deadline (10 s for Pub/Sub in production).
TEMPORAL_RPC_TIMEOUT = timedelta(seconds=5)
HEALTH_CHECK_TIMEOUT = 3.0


def create_app(settings: Settings, *, temporal_client: Client | None = None) -> Quart:
    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    state: dict[str, Any] = {}
    push_auth = push_authentication(settings)
    app.after_serving(push_auth.aclose)
    runtime = prometheus_runtime(settings.metrics_port) if settings.metrics_port else None
    metrics = IngressMetrics.on(runtime.metric_meter if runtime else MetricMeter.noop)
    routing = RoutingOptions(
        pairing_request_ttl=settings.pairing_request_ttl,
        connection_params_retry_window=settings.connection_params.retry_window,
        veraid_trust_anchors=settings.veraid_trust_anchors,
        pairing_history_events=settings.pairing_history_events,
        dedup_window=settings.dedup_window,
        pairing_linger=settings.pair_linger,
    )

    @app.before_serving
    async def connect() -> None:
        # Lazy: the ingress starts (and reports unhealthy) even while Temporal is down.
        state["temporal"] = temporal_client or await connect_temporal(
            settings.temporal, lazy=True, runtime=runtime
        )
        state["mongo"] = mongo = connect_mongo(settings.mongodb)
        state["ledger"] = ParcelLedger(
            database(mongo, settings.mongodb)[TAKEN_PARCELS], settings.dedup_window
        )

    @app.after_serving
    async def disconnect() -> None:
        mongo: AsyncMongoClient[dict[str, Any]] = state["mongo"]
        await mongo.close()

    @app.before_request
    async def bind_request_id() -> None:
        structlog.contextvars.clear_contextvars()
        request_id = request.headers.get(settings.request_id_header) or str(uuid.uuid4())
        structlog.contextvars.bind_contextvars(
            requestId=request_id, **trace_fields(request.headers.get("X-Cloud-Trace-Context"))
        )

    @app.after_request
    async def count_request(response: Response) -> Response:
        if request.method == "POST":
            metrics.request(response.status_code, g.get("content_type", "unknown"))
        return response

    @app.errorhandler(Exception)
    async def unexpected_error(error: Exception) -> Response | HTTPException:
        if isinstance(error, HTTPException):  # 405, 413, ...: already the right answer
            return error
        # A bug, not the sender's fault: 503 makes the broker redeliver rather than drop.
        logger.exception("Unexpected error while handling a request")
        return _json_error(503, "Temporarily unable to handle the message", type(error).__name__)

    @app.route("/", methods=["GET", "HEAD"])
    async def health() -> Response:
        problems = await _health_problems(state["mongo"], state["temporal"])
        if problems:
            logger.error("Health check failed", problems=problems)
            return Response("Unavailable: " + "; ".join(problems), 503, mimetype="text/plain")
        return Response("Success! It works.", 200, mimetype="text/plain")

    @app.route("/", methods=["POST"])
    async def receive() -> Response:
        # First of all: nothing of an unauthenticated push is read, let alone acted on.
        if (refusal := await push_auth.refusal(request.headers.get("Authorization"))) is not None:
            return refusal
        body: bytes = await request.get_data(as_text=False)  # type: ignore[assignment]
        try:
            event = _read_event(settings.transport, dict(request.headers), body)
        except InvalidCloudEvent as error:
            logger.info("Refused invalid CloudEvent", err=str(error))
            return _json_error(400, "Invalid CloudEvent", str(error))
        try:
            message = incoming_message_from_event(event)
        except InvalidServiceMessage as error:
            logger.warning("Invalid incoming service message", err=str(error))
            return _json_error(400, "Invalid incoming service message", str(error))

        log = logger.bind(
            parcelId=message.parcel_id, contentType=message.content_type, peerId=message.sender_id
        )
        g.content_type = message.content_type
        ledger: ParcelLedger = state["ledger"]
        now = datetime.now(UTC)
        try:
            if await ledger.was_taken(message.sender_id, message.parcel_id, now):
                log.info("Ignored redelivered service message")
                metrics.refusal(message.content_type, "Ignored redelivered service message")
                return Response("", 204)
        except PyMongoError as error:
            log.error("Could not read the taken parcels; the broker will retry", err=str(error))
            return Response("", 503)
        started = time.perf_counter()
        try:
            decision = route(message, routing, now)
        except UnsupportedContentType as error:
            log.warning("Unsupported service message content type")
            return _json_error(400, "Unsupported service message content type", str(error))
        except ContentTooLarge as error:
            # Permanent: a broker keeps redelivering it only up to its dead-letter policy.
            log.warning("Refused service message over its size limit", err=str(error))
            metrics.refusal(message.content_type, "Refused service message over its size limit")
            return _json_error(413, "Service message too large", str(error))
        finally:
            metrics.checked(message.content_type, _since(started))
        if isinstance(decision, Ignore):
            log.info(decision.reason, **decision.log_fields)
            metrics.refusal(message.content_type, decision.reason)
            return Response("", 204)

        client: Client = state["temporal"]
        started = time.perf_counter()
        try:
            await _hand_over(client, decision, settings.temporal.task_queue)
        except WorkflowAlreadyStartedError:
            # Only a StartOnce whose workflow already ran: a redelivery, already handled.
            log.info("Ignored redelivered service message", workflowId=decision.workflow_id)
            return await _taken(ledger, message, now, log)
        except (TimeoutError, RPCError, RuntimeError) as error:
            # RuntimeError: the lazy client failed to connect at all.
            log.error("Could not hand message to Temporal; the broker will retry", err=str(error))
            return Response("", 503)
        metrics.handoff_time.record(_since(started))
        log.info(
            "Incoming service message accepted",
            workflowId=decision.workflow_id,
            **decision.log_fields,
        )
        return await _taken(ledger, message, now, log)

    return app


async def _taken(
    ledger: ParcelLedger, message: IncomingServiceMessage, now: datetime, log: Any
) -> Response:
    """Remember the parcel Temporal now holds, then acknowledge it.

    If MongoDB fails here, 503: the broker's redelivery meets the workflow, which ignores
    the parcel it already took, and is recorded then.
    """
    try:
        await ledger.record(message.sender_id, message.parcel_id, now)
    except PyMongoError as error:
        log.error("Could not record the taken parcel; the broker will retry", err=str(error))
        return Response("", 503)
    return Response("", 204)


async def _hand_over(client: Client, decision: HandOver, task_queue: str) -> None:
    if isinstance(decision, SignalWithStart):
        await client.start_workflow(
            decision.workflow,
            decision.start_input,
            id=decision.workflow_id,
            task_queue=task_queue,
            start_signal=decision.signal_name,
            start_signal_args=[decision.signal_input],
            search_attributes=decision.search_attributes,
            static_summary=decision.summary,
            rpc_timeout=TEMPORAL_RPC_TIMEOUT,
        )
        return
    if not isinstance(decision, StartOnce):
        raise TypeError(f"Unknown hand-over decision: {type(decision).__name__}")  # a bug
    # Running: USE_EXISTING makes the start a no-op. Closed: REJECT_DUPLICATE makes it fail
    # with WorkflowAlreadyStartedError (until the namespace's retention drops it; the record
    # of taken parcels covers the rest of the dedup window).
    await client.start_workflow(
        decision.workflow,
        decision.start_input,
        id=decision.workflow_id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=decision.search_attributes,
        static_summary=decision.summary,
        rpc_timeout=TEMPORAL_RPC_TIMEOUT,
    )


def _read_event(transport: Transport, headers: dict[str, str], body: bytes) -> BaseCloudEvent:
    if transport is Transport.GOOGLE_PUBSUB:
        return event_from_pubsub_push(body)
    return event_from_http(headers, body)


def _since(started: float) -> timedelta:
    return timedelta(seconds=time.perf_counter() - started)


def _json_error(status: int, message: str, detail: str) -> Response:
    return Response(
        json.dumps({"message": message, "detail": detail}), status, mimetype="application/json"
    )


async def _health_problems(mongo: AsyncMongoClient[dict[str, Any]], temporal: Client) -> list[str]:
    async def mongo_ok() -> str | None:
        try:
            await asyncio.wait_for(mongo.admin.command("ping"), HEALTH_CHECK_TIMEOUT)
        except Exception as error:  # noqa: BLE001 - any failure means unhealthy
            return f"MongoDB unreachable ({type(error).__name__})"
        return None

    async def temporal_ok() -> str | None:
        try:
            healthy = await asyncio.wait_for(
                temporal.service_client.check_health(), HEALTH_CHECK_TIMEOUT
            )
        except Exception as error:  # noqa: BLE001 - any failure means unhealthy
            return f"Temporal unreachable ({type(error).__name__})"
        return None if healthy else "Temporal not serving"

    results = await asyncio.gather(mongo_ok(), temporal_ok())
    return [problem for problem in results if problem]
