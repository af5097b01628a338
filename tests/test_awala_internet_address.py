"""``awala.internet_address``: the SRV name of an Internet address and RFC 2782 ordering."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from awala.internet_address import SrvRecord, order_srv_records, pdc_srv_name


def test_srv_name() -> None:
    assert pdc_srv_name("example.com") == "_awala-pdc._tcp.example.com."
    assert pdc_srv_name("example.com.") == "_awala-pdc._tcp.example.com."
    assert pdc_srv_name("xn--bcher-kva.de") == "_awala-pdc._tcp.xn--bcher-kva.de."


def _record(priority: int, weight: int, target: str) -> SrvRecord:
    return SrvRecord(priority=priority, weight=weight, port=443, target=target)


def test_lower_priority_first_whatever_the_weights() -> None:
    records = [_record(20, 100, "backup"), _record(10, 0, "main"), _record(30, 5, "last")]
    for seed in range(20):
        assert [r.target for r in order_srv_records(records, random.Random(seed))] == [
            "main",
            "backup",
            "last",
        ]


def test_weights_set_the_odds_within_a_priority() -> None:
    records = [_record(10, 1, "light"), _record(10, 3, "heavy"), _record(20, 50, "backup")]
    rng = random.Random(1234)
    firsts = Counter(order_srv_records(records, rng)[0].target for _ in range(4000))
    assert set(firsts) == {"light", "heavy"}
    # Expected 3000 heavy (3/4); the bounds are over 8 standard deviations wide.
    assert 2780 < firsts["heavy"] < 3220


def test_zero_weight_records_are_rarely_first_but_never_lost() -> None:
    records = [_record(10, 0, "zero"), _record(10, 99, "weighted")]
    rng = random.Random(99)
    orders = [tuple(r.target for r in order_srv_records(records, rng)) for _ in range(2000)]
    assert set(orders) == {("weighted", "zero"), ("zero", "weighted")}
    assert orders.count(("zero", "weighted")) < 100  # about 1 in 100


def test_all_zero_weights_spread_the_load() -> None:
    records = [_record(10, 0, "a"), _record(10, 0, "b")]
    rng = random.Random(7)
    firsts = Counter(order_srv_records(records, rng)[0].target for _ in range(1000))
    assert 400 < firsts["a"] < 600


def test_service_declared_absent() -> None:
    assert order_srv_records([_record(0, 0, "")], random.Random(1)) == []
    assert [
        r.target
        for r in order_srv_records([_record(0, 0, ""), _record(5, 0, "pdc")], random.Random(1))
    ] == ["pdc"]


_RECORDS = st.lists(
    st.builds(
        SrvRecord,
        priority=st.integers(0, 3),
        weight=st.integers(0, 5),
        port=st.integers(1, 65535),
        target=st.sampled_from(["", "a", "b", "c"]),
    ),
    max_size=8,
)


@given(_RECORDS, st.integers())
def test_every_usable_record_once_in_priority_order(records: list[SrvRecord], seed: int) -> None:
    ordered = order_srv_records(records, random.Random(seed))
    assert Counter(ordered) == Counter(r for r in records if r.target)
    assert [r.priority for r in ordered] == sorted(r.priority for r in ordered)
