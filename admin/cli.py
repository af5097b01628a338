"""The command line of ``python -m admin``: arguments, settings, connections, output."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, NoReturn

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from temporalio.client import Client
from temporalio.service import RPCError

from activities import undelivered
from activities.egress import EventSink
from activities.sinks import make_sink
from admin import describe, messages, pairs
from admin.report import FAILED, USAGE, Report
from config import AdminSettings, ConfigError, load_admin_settings
from connections import connect_mongo, connect_temporal, database
from letro.errors import InvalidVeraidId
from logs import configure_logging


class Unreachable(Exception):
    """A service the command needs could not be reached."""


def parser() -> argparse.ArgumentParser:
    # --json is accepted before or after the command: one option shared by every parser,
    # whose SUPPRESS default keeps a subcommand from overwriting what was given before it
    # (so it is read with getattr).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON, not text"
    )
    root = argparse.ArgumentParser(
        prog="python -m admin",
        description="Operator commands of the Letro server, with the worker's environment.",
        parents=[common],
    )
    commands = root.add_subparsers(dest="command", required=True)

    pending = commands.add_parser(
        "pending", parents=[common], help="pending pairing requests naming a VeraId id"
    )
    pending.add_argument("veraid_id")

    purge = commands.add_parser(
        "purge",
        parents=[common],
        help="delete a VeraId id's pairing requests, undelivered messages and pair workflows",
    )
    purge.add_argument("veraid_id")
    purge.add_argument("--dry-run", action="store_true", help="say what would be done, only")

    kept = commands.add_parser("undelivered", help="messages kept after their retries ran out")
    actions = kept.add_subparsers(dest="action", required=True)
    actions.add_parser("list", parents=[common], help="list them")
    resend = actions.add_parser(
        "resend", parents=[common], help="send them again through the worker's sink"
    )
    which = resend.add_mutually_exclusive_group(required=True)
    which.add_argument("--event-id", help="the message with this event id")
    which.add_argument("--all", action="store_true", help="every message kept")

    described = commands.add_parser(
        "describe", parents=[common], help="a workflow's state in plain words"
    )
    described.add_argument("workflow_id")
    return root


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    needs_sink = args.command == "undelivered" and args.action == "resend"
    try:
        settings = load_admin_settings(needs_sink=needs_sink)
        if args.command in ("pending", "purge"):
            pairs.id_forms(args.veraid_id)  # refused before any connection is made
    except (ConfigError, InvalidVeraidId) as error:
        _fail(str(error), USAGE)
    configure_logging(
        level=settings.log_level,
        log_format=settings.log_format,
        component="admin",
        version="-",
    )
    try:
        report = asyncio.run(run(args, settings))
    except Unreachable as error:
        _fail(str(error), FAILED)
    except PyMongoError as error:
        _fail(f"MongoDB error: {error}", FAILED)
    except RPCError as error:
        _fail(f"Temporal error: {error}", FAILED)
    print(render(report, as_json=getattr(args, "json", False)))
    _exit(report.status)


def _fail(message: str, status: int) -> NoReturn:
    print(f"python -m admin: {message}", file=sys.stderr)
    _exit(status)


def _exit(status: int) -> NoReturn:
    # Without interpreter teardown: the Temporal client's Rust threads can outlive the event
    # loop, and finalising Python under them sometimes aborts the process after its output
    # was printed ("PyGILState_Release", temporalio/sdk-python#300). Nothing of ours needs
    # an exit hook: the output is flushed here, the connections were closed by ``run``.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def render(report: Report, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(report.data, indent=2, ensure_ascii=False)
    return "\n".join(report.lines)


async def run(args: argparse.Namespace, settings: AdminSettings) -> Report:
    if args.command == "pending":
        async with _database(settings) as db:
            return await pairs.pending(db, args.veraid_id)
    if args.command == "purge":
        client = await _temporal(settings)
        async with _database(settings) as db:
            return await pairs.purge(db, client, args.veraid_id, dry_run=args.dry_run)
    if args.command == "describe":
        return await describe.describe(await _temporal(settings), args.workflow_id)
    async with _database(settings) as db:
        collection = db[undelivered.COLLECTION_NAME]
        if args.action == "list":
            return await messages.list_kept(collection)
        async with _sink(settings) as sink:
            return await messages.resend(collection, sink, None if args.all else args.event_id)


@asynccontextmanager
async def _database(settings: AdminSettings) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client = connect_mongo(settings.mongodb)
    try:
        yield database(client, settings.mongodb)
    finally:
        await client.close()


async def _temporal(settings: AdminSettings) -> Client:
    try:
        return await connect_temporal(settings.temporal)
    except RuntimeError as error:  # how the SDK reports a failed connection
        raise Unreachable(
            f"cannot reach Temporal at {settings.temporal.address}: {error}"
        ) from None


@asynccontextmanager
async def _sink(settings: AdminSettings) -> AsyncIterator[EventSink]:
    sink = make_sink(
        settings.transport, sink_url=settings.sink_url, pubsub_topic=settings.pubsub_topic
    )
    try:
        yield sink
    finally:
        await sink.close()
