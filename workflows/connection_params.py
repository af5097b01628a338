"""Connection parameters retrieval: one workflow per request, answered exactly once.

The agent names an Internet endpoint by domain name (already checked by the ingress).
The workflow resolves its ``_awala-pdc._tcp`` SRV record, fetches the parameters from the
PoHTTP server it names, and replies with them, or with ``misconfigured-internet-endpoint``
echoing the name. Transient failures are retried with backoff until ``retry_seconds``
after the request arrived; then the endpoint is reported misconfigured too, with an error
log line, so the agent always gets an answer.

The workflow id is derived from the parcel, so a redelivered event maps to the same
workflow and the ingress's start is then a no-op while it runs, or refused once it closed;
after that, the ingress's record of taken parcels drops it (``ingress.parcel_ledger``).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.connection_params import MISCONFIGURED, ConnectionParamsActivities
    from contract.connection_params import (
        ConnectionParamsInput,
        ConnectionParamsOutcome,
        FetchRequest,
        ResolveRequest,
    )
    from letro.content_types import CONNECTION_PARAMS, MISCONFIGURED_INTERNET_ENDPOINT
    from metrics import CONNECTION_PARAMS_OUTCOMES, count
    from workflows import visibility
    from workflows.replies import emit, event_id, outgoing_message

WORKFLOW_ID_PREFIX = "connection-params"
# Parcel ids are chosen by the sender; long ones are hashed to keep under Temporal's limit.
_MAX_PARCEL_ID_IN_WORKFLOW_ID = 200

# Resolution and fetch are regular activities, not local ones: they wait on third-party
# servers (up to 3 s per target) and are retried for minutes, which a local activity would
# do inside the workflow task; as regular activities each pending attempt and its last
# failure show in the Web UI. Backoff from 1 s doubling to 30 s; the overall bound is the
# request's retry window, applied as the schedule-to-close timeout of each activity.
_TRANSIENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[MISCONFIGURED],
)
_RESOLVE_ATTEMPT_TIMEOUT = timedelta(seconds=10)
_FETCH_ATTEMPT_TIMEOUT = timedelta(seconds=15)  # up to 3 targets x 3 s, plus margin


def workflow_id_for(sender_endpoint_id: str, parcel_id: str) -> str:
    """The id of the workflow answering one parcel; parcel ids are scoped to their sender."""
    if len(parcel_id) > _MAX_PARCEL_ID_IN_WORKFLOW_ID:
        parcel_id = "sha256-" + hashlib.sha256(parcel_id.encode()).hexdigest()
    return f"{WORKFLOW_ID_PREFIX}:{sender_endpoint_id}:{parcel_id}"


@workflow.defn(name="ConnectionParamsRetrieval")
class ConnectionParamsRetrieval:
    @workflow.run
    async def run(self, request: ConnectionParamsInput) -> ConnectionParamsOutcome:
        outcome = await self._answer(request)
        count(
            workflow.metric_meter(),
            CONNECTION_PARAMS_OUTCOMES,
            reply=outcome.content_type,
            retries_ran_out=str(outcome.gave_up_after_retries).lower(),
        )
        if outcome.content_type == CONNECTION_PARAMS:
            visibility.record(outcome="served")
        else:
            visibility.record(
                outcome="gave-up" if outcome.gave_up_after_retries else "misconfigured"
            )
        return outcome

    async def _answer(self, request: ConnectionParamsInput) -> ConnectionParamsOutcome:
        # The window opens when a worker first runs the workflow, not when the ingress
        # started it: an outage of our own workers must not count against the endpoint.
        deadline = workflow.now() + timedelta(seconds=request.retry_seconds)
        log_fields = {
            "internetAddress": request.ascii_domain_name,
            "peerId": request.requester_endpoint_id,
            "parcelId": request.parcel_id,
        }
        try:
            endpoint = await workflow.execute_activity_method(
                ConnectionParamsActivities.resolve,
                ResolveRequest(request.ascii_domain_name),
                start_to_close_timeout=_RESOLVE_ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=_budget(deadline, _RESOLVE_ATTEMPT_TIMEOUT),
                retry_policy=_TRANSIENT_RETRY,
            )
            fetched = await workflow.execute_activity_method(
                ConnectionParamsActivities.fetch,
                FetchRequest(request.ascii_domain_name, endpoint.targets),
                start_to_close_timeout=_FETCH_ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=_budget(deadline, _FETCH_ATTEMPT_TIMEOUT),
                retry_policy=_TRANSIENT_RETRY,
            )
        except ActivityError as error:
            outcome = self._misconfigured(error, log_fields)
            await self._reply(request, outcome.content_type, request.domain_name.encode("utf-8"))
            return outcome

        await self._reply(request, CONNECTION_PARAMS, fetched.der)
        workflow.logger.info(
            "Connection parameters sent", extra={**log_fields, "endpointHost": fetched.host}
        )
        return ConnectionParamsOutcome(CONNECTION_PARAMS, f"served by {fetched.host}")

    @staticmethod
    def _misconfigured(error: ActivityError, log_fields: dict[str, str]) -> ConnectionParamsOutcome:
        cause = error.cause
        if isinstance(cause, ApplicationError) and cause.type == MISCONFIGURED:
            workflow.logger.info(
                "Internet endpoint is misconfigured", extra={**log_fields, "reason": cause.message}
            )
            return ConnectionParamsOutcome(MISCONFIGURED_INTERNET_ENDPOINT, cause.message)
        # Retries exhausted: the retry window closed on a transient failure.
        reason = str(cause) if cause is not None else str(error)
        workflow.logger.error(
            "Gave up retrieving connection params after transient failures",
            extra={**log_fields, "err": reason},
        )
        return ConnectionParamsOutcome(MISCONFIGURED_INTERNET_ENDPOINT, reason, True)

    async def _reply(
        self, request: ConnectionParamsInput, content_type: str, content: bytes
    ) -> None:
        # Retried, then kept for an operator: an answer that was decided is never lost.
        await emit(
            outgoing_message(
                event_id=event_id("reply"),
                sender_endpoint_id=request.server_endpoint_id,
                recipient_endpoint_id=request.requester_endpoint_id,
                content_type=content_type,
                content_b64=base64.b64encode(content).decode("ascii"),
            )
        )


def _budget(deadline: datetime, attempt_timeout: timedelta) -> timedelta:
    """What is left of the retry window, but always room for one whole attempt.

    So each step is tried at least once even when the window closed while the workflow
    waited for a worker, and the whole retrieval stays bounded: window plus one attempt.
    """
    return max(deadline - workflow.now(), attempt_timeout)
