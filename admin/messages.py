"""``undelivered list`` and ``undelivered resend``: the messages the egress kept."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from activities import undelivered
from activities.egress import EventSink, service_message
from admin.report import FAILED, OK, Report, plural
from contract.messages import OutgoingMessage


async def list_kept(collection: AsyncCollection[dict[str, Any]]) -> Report:
    kept = await undelivered.find_kept(collection, undelivered.EVERY_MESSAGE)
    lines = [plural(len(kept), "undelivered message")]
    for item in kept:
        message = item.message
        lines += [
            f"  {message.event_id}: {message.content_type} to {message.recipient_endpoint_id}",
            f"    from workflow {item.workflow_id}",
            f"    failing since {item.first_failure.isoformat()},"
            f" last at {item.last_failure.isoformat()}: {item.reason}",
            f"    expires {message.expiry_time.isoformat()}",
        ]
    return Report(lines, {"messages": [item.as_json() for item in kept]})


async def resend(
    collection: AsyncCollection[dict[str, Any]], sink: EventSink, event_id: str | None
) -> Report:
    """Send each selected message again, as it was (same event id), deleting it once sent.

    ``event_id`` None: every kept message. A message past its expiry is left alone: the
    endpoint would refuse it, and MongoDB deletes it shortly.
    """
    query: Mapping[str, Any] = (
        undelivered.EVERY_MESSAGE if event_id is None else undelivered.with_event_id(event_id)
    )
    kept = await undelivered.find_kept(collection, query)
    if event_id is not None and not kept:
        return Report([f"No undelivered message has event id {event_id}"], {"results": []}, FAILED)
    results = [await _resend_one(collection, sink, item.message) for item in kept]
    lines = [plural(len(kept), "undelivered message") + " to resend"]
    lines += [f"  {result['eventId']}: {result['detail']}" for result in results]
    status = OK if all(result["outcome"] == "delivered" for result in results) else FAILED
    return Report(lines, {"results": results}, status)


async def _resend_one(
    collection: AsyncCollection[dict[str, Any]], sink: EventSink, message: OutgoingMessage
) -> dict[str, str]:
    now = datetime.now(UTC)
    if message.expiry_time <= now:
        return _result(message, "expired", f"not resent: expired {message.expiry_time}")
    try:
        await sink.send(service_message(message))
    # Whatever the transport raises is this message's failure, said and recorded; the
    # other messages are still tried.
    except Exception as error:  # noqa: BLE001
        reason = f"{type(error).__name__}: {error}"
        await undelivered.note_failure(collection, message.event_id, reason, now)
        return _result(message, "failed", f"not delivered: {reason}")
    await undelivered.delete_kept(collection, undelivered.with_event_id(message.event_id))
    return _result(message, "delivered", f"delivered to {message.recipient_endpoint_id}")


def _result(message: OutgoingMessage, outcome: str, detail: str) -> dict[str, str]:
    return {"eventId": message.event_id, "outcome": outcome, "detail": detail}
