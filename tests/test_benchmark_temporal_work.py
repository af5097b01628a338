"""The pairing benchmark's reading of histories, on the recorded ones (``tests/histories``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from benchmarks.pairing.temporal_work import _matched_in_one_task

HISTORIES_DIR = Path(__file__).resolve().parent / "histories"


def events_of(name: str) -> Sequence[HistoryEvent]:
    path = HISTORIES_DIR / f"{name}.json"
    return WorkflowHistory.from_json("recorded", path.read_text()).events


@pytest.mark.parametrize("kind", ["Legacy", "Veraid"])
def test_a_match_in_the_task_that_took_the_second_request_is_seen(kind: str) -> None:
    # The first request was stored in a task of its own, with a timer cancelled before the
    # match's marker in the second task: the match still took no extra round trip.
    events = events_of(f"{kind}ContactPairing.read-back-match-in-one-step")
    assert _matched_in_one_task(events)


@pytest.mark.parametrize("kind", ["Legacy", "Veraid"])
def test_a_match_sent_without_the_one_step_activity_is_not_counted(kind: str) -> None:
    # Before the one-step match, three local activities sent it: none is the match's.
    assert not _matched_in_one_task(events_of(f"{kind}ContactPairing.match"))
