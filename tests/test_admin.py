"""The operator commands' own logic, without the stack: ids, sentences, failures, settings,
and the command line's refusals (run as ``python -m admin``, which must fail before
connecting to anything)."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta

import pytest
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutType
from temporalio.exceptions import TimeoutError as TemporalTimeout

from admin.describe import account_sentences, failure_text, pair_sentences
from admin.pairs import PairWorkflowId, id_forms, names, parse_pair_workflow_id
from config import ConfigError, Transport, load_admin_settings, load_settings
from contract.accounts import AccountCreationStatus
from contract.pairing import PairingStatus
from infra.processes import REPO_ROOT, python_module
from letro.errors import InvalidVeraidId
from workflows.replies import failure_reason


@pytest.mark.parametrize(
    ("workflow_id", "expected"),
    [
        (
            "legacy-pairing:alice@a.example:bob@b.example",
            PairWorkflowId("legacy-pairing", "alice@a.example", "bob@b.example"),
        ),
        # User names may hold ':' (never '@'); domain names hold neither.
        (
            "veraid-pairing:a:b@a.example:c:d@b.example",
            PairWorkflowId("veraid-pairing", "a:b@a.example", "c:d@b.example"),
        ),
        ("account-creation:0abc:123", None),
        ("forward:alice@a.example:bob@b.example", None),
        ("veraid-pairing:alice@a.example", None),
        ("veraid-pairing:no-at-sign:bob@b.example", None),
        ("veraid-pairing", None),
    ],
)
def test_pair_workflow_ids_are_parsed(workflow_id: str, expected: PairWorkflowId | None) -> None:
    assert parse_pair_workflow_id(workflow_id) == expected


def test_a_pair_workflow_names_either_of_its_ids_and_no_other() -> None:
    workflow_id = "legacy-pairing:alice@a.example:bob@b.example"

    assert names(workflow_id, {"alice@a.example"})
    assert names(workflow_id, {"bob@b.example"})
    assert not names(workflow_id, {"alice@a.exampl"})
    assert not names(workflow_id, {"b@b.example"})
    assert not names(workflow_id, {"alice@a.example:bob@b.example"})


def test_an_id_is_looked_up_as_given_and_in_matching_form() -> None:
    assert id_forms("Alice@Example.COM") == {"Alice@Example.COM", "alice@example.com"}
    assert id_forms("bob@bücher.example") == {"bob@bücher.example", "bob@xn--bcher-kva.example"}
    with pytest.raises(InvalidVeraidId):
        id_forms("example.com")


def test_a_pair_s_status_in_sentences() -> None:
    waiting = PairingStatus(["alice@a.example"], matches=1, expirations=2, redeliveries_ignored=0)
    both = PairingStatus(
        ["alice@a.example", "bob@b.example"],
        matches=0,
        expirations=1,
        redeliveries_ignored=3,
        requests_handled=2,
    )

    assert pair_sentences(waiting) == [
        "1 request is waiting for its match, from alice@a.example.",
        "Over the pair's whole life: 1 match and 2 requests expired unmatched.",
        "In this run: 0 new requests taken in and 0 redelivered requests ignored.",
    ]
    assert pair_sentences(both)[:3] == [
        "2 requests are waiting for their match, from alice@a.example and bob@b.example.",
        "Over the pair's whole life: 0 matches and 1 request expired unmatched.",
        "In this run: 2 new requests taken in and 3 redelivered requests ignored.",
    ]
    assert pair_sentences(PairingStatus([], 0, 0, 0))[0] == "No request is waiting for its match."


def test_an_account_s_status_in_sentences() -> None:
    assert account_sentences(AccountCreationStatus("alice@a.example", 2, 1)) == [
        "The account alice@a.example was created.",
        "2 copies of the request received, 1 reply delivered.",
    ]
    assert account_sentences(AccountCreationStatus(None, 1, 0)) == [
        "No account was created (yet).",
        "1 copy of the request received, 0 replies delivered.",
    ]


def _activity_error(cause: BaseException) -> ActivityError:
    error = ActivityError(
        "Activity task failed",
        scheduled_event_id=5,
        started_event_id=6,
        identity="worker",
        activity_type="emit_service_message",
        activity_id="6",
        retry_state=RetryState.TIMEOUT,
    )
    error.__cause__ = cause
    return error


def test_a_failure_reason_names_the_last_attempt_s_error() -> None:
    refused = ApplicationError("Sink answered HTTP 400 to event e", type="SinkRejectedEvent")
    timeout = TemporalTimeout(
        "activity timeout", type=TimeoutType.SCHEDULE_TO_CLOSE, last_heartbeat_details=[]
    )
    timeout.__cause__ = ApplicationError(
        "Sink answered HTTP 503 to event e", type="SinkUnavailable"
    )

    assert failure_reason(_activity_error(refused)) == (
        "SinkRejectedEvent: Sink answered HTTP 400 to event e"
    )
    assert failure_reason(_activity_error(timeout)) == (
        "schedule-to-close timeout, after: SinkUnavailable: Sink answered HTTP 503 to event e"
    )


def test_a_pending_activity_s_failure_is_worded_alike() -> None:
    failure = Failure(
        message="activity timeout",
        cause=Failure(
            message="Sink answered HTTP 400 to event e",
            application_failure_info=ApplicationFailureInfo(type="SinkRejectedEvent"),
        ),
    )

    assert failure_text(failure) == (
        "activity timeout, after: SinkRejectedEvent: Sink answered HTTP 400 to event e"
    )


# Settings.

MONGO = {"MONGODB_URI": "mongodb://db.example:27017/letro"}


def test_the_commands_need_only_mongodb_and_temporal() -> None:
    settings = load_admin_settings(MONGO)

    assert settings.mongodb.uri == MONGO["MONGODB_URI"]
    assert settings.temporal.address == "localhost:7233"
    assert settings.temporal.payload_keys is None
    assert settings.transport is Transport.HTTP_BINARY


def test_resending_needs_the_worker_s_sink() -> None:
    with pytest.raises(ConfigError, match="K_SINK is required when CE_TRANSPORT=ce-http-binary"):
        load_admin_settings(MONGO, needs_sink=True)
    settings = load_admin_settings(
        {
            **MONGO,
            "CE_TRANSPORT": "google-pubsub",
            "CE_GPUBSUB_TOPIC": "out",
            "GOOGLE_CLOUD_PROJECT": "p",
        },
        needs_sink=True,
    )
    assert settings.pubsub_topic == "projects/p/topics/out"


def test_the_commands_read_the_worker_s_payload_keys() -> None:
    key = "a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5LWtleS0="  # 32 bytes
    with pytest.raises(ConfigError, match="TEMPORAL_PAYLOAD_ACTIVE_KEY is required"):
        load_admin_settings({**MONGO, "TEMPORAL_PAYLOAD_KEYS": f"k1:{key}"})
    settings = load_admin_settings(
        {**MONGO, "TEMPORAL_PAYLOAD_KEYS": f"k1:{key}", "TEMPORAL_PAYLOAD_ACTIVE_KEY": "k1"}
    )
    assert settings.temporal.payload_keys is not None


def test_the_egress_retry_window_is_a_week_unless_set() -> None:
    worker = {**MONGO, "VERSION": "1", "K_SINK": "http://sink/"}

    assert load_settings("worker", worker).egress_retry_window == timedelta(days=7)
    assert load_settings(
        "worker", {**worker, "EGRESS_RETRY_SECONDS": "3"}
    ).egress_retry_window == timedelta(seconds=3)
    with pytest.raises(ConfigError, match="EGRESS_RETRY_SECONDS='0' is not a positive integer"):
        load_settings("worker", {**worker, "EGRESS_RETRY_SECONDS": "0"})


# The command line: refusals that need no service (nothing listens at these addresses).

OFFLINE = {**MONGO, "MONGODB_URI": "mongodb://127.0.0.1:1/", "TEMPORAL_ADDRESS": "127.0.0.1:1"}


def run_admin(*args: str, env: dict[str, str] = OFFLINE) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "TEMPORAL_"))}
    return subprocess.run(
        python_module("admin", *args),
        cwd=REPO_ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_id_that_is_not_a_veraid_id_is_refused_before_connecting() -> None:
    ran = run_admin("pending", "example.com")

    assert ran.returncode == 2
    assert ran.stdout == ""
    assert "is not a VeraId user id" in ran.stderr


def test_a_missing_setting_is_named() -> None:
    ran = run_admin("undelivered", "list", env={})

    assert ran.returncode == 2
    assert "MONGODB_URI is required" in ran.stderr


def test_resend_must_say_which_messages() -> None:
    ran = run_admin("undelivered", "resend")

    assert ran.returncode == 2
    assert "one of the arguments --event-id --all is required" in ran.stderr


def test_an_unreachable_temporal_is_said_plainly() -> None:
    ran = run_admin("describe", "some-workflow")

    assert ran.returncode == 1
    assert "python -m admin: cannot reach Temporal at 127.0.0.1:1" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_an_unreachable_mongodb_is_said_plainly() -> None:
    ran = run_admin("undelivered", "list")

    assert ran.returncode == 1
    assert "python -m admin: MongoDB error: 127.0.0.1:1" in ran.stderr
    assert "Traceback" not in ran.stderr
