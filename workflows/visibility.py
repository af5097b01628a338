"""What the Temporal Web UI and ``temporal workflow list --query`` can find: search attributes.

Three custom search attributes, set by the ingress when it starts a workflow and by the
workflows as they conclude:

- ``LetroModule`` (Keyword): which part of the product the workflow serves, e.g.
  ``veraid-pairing`` or ``connection-params``;
- ``LetroOutcome`` (Keyword): how it ended, e.g. ``matched``, ``expired``, a failure reason,
  ``created``, ``misconfigured``; absent while undecided;
- ``LetroPending`` (Bool): for pair workflows, whether a request is waiting for its match.

They must exist in the namespace before the service runs: the local dev server registers
them at start-up (``infra.services``); in production, ``temporal operator search-attribute
create`` does (README, "Finding workflows"). Each upsert is one command in the history, so
workflows upsert only when a value changes.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio import workflow
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

MODULE = SearchAttributeKey.for_keyword("LetroModule")
OUTCOME = SearchAttributeKey.for_keyword("LetroOutcome")
PENDING = SearchAttributeKey.for_bool("LetroPending")

# The values of LetroModule.
LEGACY_PAIRING = "legacy-pairing"
VERAID_PAIRING = "veraid-pairing"
PAIRING_REFUSAL = "contact-pairing-refusal"
AUTHORISATION = "pairing-authorisation"
ACCOUNT_CREATION = "account-creation"
CONNECTION_PARAMS = "connection-params"

# Name and type of each, as `temporal operator search-attribute create` takes them.
DECLARATIONS: Mapping[str, str] = {
    MODULE.name: "Keyword",
    OUTCOME.name: "Keyword",
    PENDING.name: "Bool",
}


def at_start(module: str, *, pending: bool | None = None) -> TypedSearchAttributes:
    """The search attributes a workflow of ``module`` starts with."""
    pairs: list[SearchAttributePair[str] | SearchAttributePair[bool]] = [
        SearchAttributePair(MODULE, module)
    ]
    if pending is not None:
        pairs.append(SearchAttributePair(PENDING, pending))
    return TypedSearchAttributes(pairs)


def record(*, outcome: str | None = None, pending: bool | None = None) -> None:
    """Upsert what changed, from workflow code; nothing (no command) if nothing did."""
    current = workflow.info().typed_search_attributes
    updates: list[SearchAttributeUpdate[str] | SearchAttributeUpdate[bool]] = []
    if outcome is not None and current.get(OUTCOME) != outcome:
        updates.append(OUTCOME.value_set(outcome))
    if pending is not None and current.get(PENDING) != pending:
        updates.append(PENDING.value_set(pending))
    if updates:
        workflow.upsert_search_attributes(updates)
