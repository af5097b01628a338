"""``ingress.routing`` for connection parameters requests: pure decisions, no I/O."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from awala.service_messages import IncomingServiceMessage
from contract.connection_params import ConnectionParamsInput
from ingress.routing import Ignore, RoutingOptions, StartOnce, route
from letro.content_types import CONNECTION_PARAMS_REQUEST
from workflows import visibility
from workflows.connection_params import ConnectionParamsRetrieval

OPTIONS = RoutingOptions(
    pairing_request_ttl=timedelta(days=90), connection_params_retry_window=timedelta(seconds=42)
)
NOW = datetime.now(UTC)
SENDER = "0" + "ab" * 32
SERVER = "0" + "cd" * 32


def _message(content: bytes, parcel_id: str = "parcel-1") -> IncomingServiceMessage:
    return IncomingServiceMessage(
        parcel_id=parcel_id,
        sender_id=SENDER,
        recipient_id=SERVER,
        content_type=CONNECTION_PARAMS_REQUEST,
        content=content,
    )


def test_valid_request_starts_one_workflow_per_parcel() -> None:
    decision = route(_message("Bücher.Example".encode()), OPTIONS, NOW)

    assert decision == StartOnce(
        workflow=ConnectionParamsRetrieval.run,
        workflow_id=f"connection-params:{SENDER}:parcel-1",
        start_input=ConnectionParamsInput(
            parcel_id="parcel-1",
            server_endpoint_id=SERVER,
            requester_endpoint_id=SENDER,
            domain_name="Bücher.Example",
            ascii_domain_name="xn--bcher-kva.example",
            retry_seconds=42.0,
        ),
        log_fields={"internetAddress": "xn--bcher-kva.example"},
        search_attributes=visibility.at_start(visibility.CONNECTION_PARAMS),
        summary="Connection params of xn--bcher-kva.example",
    )


def test_long_parcel_ids_are_hashed_in_the_workflow_id() -> None:
    parcel_id = "p" * 500
    decision = route(_message(b"example.com", parcel_id), OPTIONS, NOW)
    assert isinstance(decision, StartOnce)
    digest = hashlib.sha256(parcel_id.encode()).hexdigest()
    assert decision.workflow_id == f"connection-params:{SENDER}:sha256-{digest}"
    assert isinstance(decision.start_input, ConnectionParamsInput)
    assert decision.start_input.parcel_id == parcel_id


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"malformed", "single label"),
        (b"x" * 129, "too long"),
        (b"\xff.example", "UTF-8"),
        (b"a_b.example", "malformed"),
    ],
)
def test_malformed_names_are_ignored_with_a_reason(content: bytes, reason: str) -> None:
    decision = route(_message(content), OPTIONS, NOW)
    assert isinstance(decision, Ignore)
    assert decision.reason == "Refused malformed connection params request"
    assert reason in decision.log_fields["reason"]
