"""The benchmarks' own logic that decides their verdicts: reply matching, the mix, the bound.

The benchmarks themselves run against the real stack (README, Benchmarks); these check
the parts that, if wrong, would make a benchmark pass when the stack lost or doubled a
reply, or measure something other than it says.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import pytest

from benchmarks.exchanges.workload import Exchange, Module, exchanges_for
from benchmarks.mixed import DEFAULT_MIX, parse_mix
from benchmarks.pairing.load_generator import PairOutcome, bounded
from benchmarks.pairing_protocols import Pair, Side
from benchmarks.replies import ExpectedReply, ReplyRecorder, check_replies
from infra.sink import ReceivedEvent


def _event(recipient: str, content_type: str, data: bytes, event_id: str) -> ReceivedEvent:
    return ReceivedEvent(event_id, "outgoing", "server", recipient, content_type, data, None, 1.0)


async def test_replies_are_matched_by_exact_bytes_or_any_and_counted() -> None:
    recorder = ReplyRecorder()
    exact = ExpectedReply("alice", "match", b"bob's request")
    anything = ExpectedReply("carol", "account")
    exact_arrived = recorder.expect_reply(exact)
    anything_arrived = recorder.expect_reply(anything)

    await recorder.add(_event("alice", "match", b"someone else's", "e1"))
    assert not exact_arrived.done()  # other bytes are not the awaited reply
    await recorder.add(_event("alice", "match", b"bob's request", "e2"))
    await recorder.add(_event("carol", "account", b"whatever", "e3"))
    await recorder.add(_event("carol", "account", b"whatever", "e3"))  # redelivered
    await recorder.add(_event("carol", "account", b"again", "e4"))  # done twice
    await recorder.add(_event("dave", "failure", b"", "e5"))

    assert exact_arrived.done()
    assert anything_arrived.done()
    result = check_replies(["204", "204", "503"], 1, [exact, anything], recorder)
    assert (result.missing, result.duplicated, result.redelivered) == (0, 1, 1)
    assert (result.rejected, result.not_sent) == ({"503": 1}, 1)
    assert not result.ok
    assert recorder.take_unexpected() == {"match": 1, "failure": 1}
    assert recorder.take_unexpected() == {}  # taken once, by one phase


async def test_taking_one_type_of_unexpected_message_leaves_the_rest_for_the_next_check() -> None:
    # The floor with I/O takes its own replies; a late duplicate of a match must still be
    # charged to the next pairing phase.
    recorder = ReplyRecorder()
    await recorder.add(_event("floor-0", "floor", b"", "f0"))
    await recorder.add(_event("alice", "match", b"late", "m1"))
    await recorder.add(_event("floor-1", "floor", b"", "f1"))
    assert recorder.take_unexpected("floor") == {"floor": 2}
    assert recorder.take_unexpected("floor") == {}
    assert recorder.take_unexpected() == {"match": 1}


async def test_a_missing_reply_fails_the_check() -> None:
    recorder = ReplyRecorder()
    reply = ExpectedReply("alice", "match", b"x")
    recorder.expect_reply(reply)
    result = check_replies(["204"], 0, [reply], recorder)
    assert result.missing == 1
    assert not result.ok
    assert check_replies(["204"], 0, [], recorder).ok


async def test_two_requests_cannot_await_the_same_reply() -> None:
    recorder = ReplyRecorder()
    recorder.expect_reply(ExpectedReply("alice", "match"))
    with pytest.raises(ValueError, match="same reply"):
        recorder.expect_reply(ExpectedReply("alice", "match"))


def test_default_mix() -> None:
    assert parse_mix(DEFAULT_MIX) == {
        "veraid": 50.0,
        "legacy": 10.0,
        "authorisations": 20.0,
        "accounts": 10.0,
        "connection-params": 10.0,
    }


@pytest.mark.parametrize(
    "text",
    ["veraid=50,bogus=1", "veraid", "veraid=-1", "veraid=nan", "veraid=inf", "veraid=0", ""],
)
def test_bad_mix_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_mix(text)


class _Fake(Module):
    title = rate_unit = material = "fake"

    def make(self, run_id: str, phase: str, count: int) -> list[Exchange]:
        return []


class _FakePairs(_Fake):
    name = "veraid"
    messages_per_exchange = 2


class _FakeAccounts(_Fake):
    name = "accounts"


def test_mix_shares_count_messages_so_pairs_get_half_as_many_exchanges() -> None:
    modules = [_FakePairs(), _FakeAccounts()]
    counts = exchanges_for(300, {"veraid": 50, "accounts": 10, "legacy": 40}, modules)
    # 300 messages, of which veraid gets 50/60 and accounts 10/60 (legacy is not running).
    assert counts == {"veraid": 125, "accounts": 50}


async def test_bounded_closed_loop_keeps_at_most_n_pairs_unmatched() -> None:
    loop = asyncio.get_running_loop()
    matches: list[asyncio.Future[float]] = []

    async def drive(pair: Pair) -> PairOutcome:
        both = (loop.create_future(), loop.create_future())
        matches.extend(both)
        return PairOutcome(pair, 0.0, 0.0, ("204", "204"), both)

    pairs = [Pair(Side(f"a{i}", b"", b"a"), Side(f"b{i}", b"", b"b")) for i in range(5)]
    drive_bounded = bounded(drive, asyncio.Semaphore(2), deadline=time.monotonic() + 30)
    lanes = [asyncio.ensure_future(drive_bounded(pair)) for pair in pairs]
    await asyncio.sleep(0.05)
    assert sum(lane.done() for lane in lanes) == 2  # three wait for a slot

    matches[0].set_result(1.0)  # one side of the first pair: not matched yet
    await asyncio.sleep(0.05)
    assert sum(lane.done() for lane in lanes) == 2
    matches[1].set_result(1.0)  # both sides: its slot is free
    await asyncio.sleep(0.05)
    assert sum(lane.done() for lane in lanes) == 3
    while not all(lane.done() for lane in lanes):
        for future in matches:
            if not future.done():
                future.set_result(1.0)
        await asyncio.sleep(0.01)


async def test_a_refused_pair_frees_its_slot_at_once() -> None:
    async def refused(pair: Pair) -> PairOutcome:
        never = asyncio.get_running_loop().create_future()
        return PairOutcome(pair, 0.0, 0.0, ("400", "400"), (never, never))

    drive_bounded = bounded(refused, asyncio.Semaphore(1), deadline=time.monotonic() + 30)
    pair = Pair(Side("a", b"", b"a"), Side("b", b"", b"b"))
    async with asyncio.timeout(5):
        for _ in range(3):  # with the slot kept, the second would wait until the deadline
            await drive_bounded(pair)
