"""How a one-shot workflow keeps its parcel from having a second effect for the dedup window.

A one-shot workflow (a forwarded authorisation, a pairing refusal, a connection-params answer)
has its id derived from the parcel, and the ingress starts it with USE_EXISTING while it runs
and REJECT_DUPLICATE once it closed. A closed workflow is only remembered for the namespace's
retention, which should be short (it holds personal data), so once its work is done the
workflow continues as new into ``RememberParcel``: the same id, an input holding nothing but
the deadline, and a single timer. A redelivery within the window meets the running workflow
and does nothing; the first run's history, with the message in it, ages out with the retention.

Only parcels the ingress verified and handed over get here: nothing is recorded before that.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contract.messages import RememberedParcel

# Patch (see README, "Changing a workflow"): a one-shot workflow that finished its work goes
# on remembering its parcel, instead of completing.
REMEMBER_PARCEL = "remember-parcel-for-dedup-window"


@workflow.defn(name="RememberParcel")
class RememberParcel:
    def __init__(self) -> None:
        self._outcome: Any = None

    @workflow.run
    async def run(self, remembered: RememberedParcel) -> Any:
        self._outcome = remembered.outcome
        left = remembered.until - workflow.now()
        if left > timedelta(0):
            await workflow.sleep(left)
        return remembered.outcome

    @workflow.query(name="outcome")
    def outcome(self) -> Any:
        """What the run that did the work returned (as JSON), for operators and tests."""
        return self._outcome


def remember_parcel(taken_at: datetime, window_seconds: float, outcome: Any = None) -> None:
    """From a one-shot workflow whose work is done: hold its id until the window closes.

    ``taken_at`` is when the workflow first ran (its parcel was taken). Does nothing for a
    workflow started without a window (before it existed) or replaying a history recorded
    before this patch: that one completes, as it did.
    """
    if window_seconds <= 0 or not workflow.patched(REMEMBER_PARCEL):
        return
    until = taken_at + timedelta(seconds=window_seconds)
    if until <= workflow.now():
        return  # the work outlasted the window: nothing left to remember
    workflow.continue_as_new(RememberedParcel(until, outcome), workflow=RememberParcel.run)
