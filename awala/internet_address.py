"""Where an Awala Internet address is served: its ``_awala-pdc._tcp`` SRV records, in order.

An Internet endpoint's address (``example.com``) is resolved to the host and port of its
PoHTTP server through the SRV record ``_awala-pdc._tcp.example.com`` (DNSSEC required).
relaynet-core's ``resolveInternetAddress`` takes the first answer and ignores priority and
weight; here the records are ordered as RFC 2782 prescribes, so a client tries them in
that order. The lookup itself is I/O and lives in ``activities/``; this module is pure.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

PDC_SRV_PREFIX: Final = "_awala-pdc._tcp"


def pdc_srv_name(ascii_domain_name: str) -> str:
    """The SRV owner name for an Internet address, as an absolute name."""
    return f"{PDC_SRV_PREFIX}.{ascii_domain_name.removesuffix('.')}."


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """One SRV record's data; ``target`` without its trailing dot (``"."`` stays ``""``)."""

    priority: int
    weight: int
    port: int
    target: str

    @property
    def is_service_absent(self) -> bool:
        """RFC 2782: a target of "." means the service is decidedly not available."""
        return self.target == ""


def order_srv_records(records: Sequence[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    """The order in which to try ``records``, per RFC 2782.

    Lower priorities come first. Within one priority, records are drawn one at a time,
    each with a probability proportional to its weight; the records of weight 0 share a
    chance of 1 in (sum of weights + 1) of being picked first. Records whose target is "."
    are left out.
    """
    usable = [record for record in records if not record.is_service_absent]
    ordered: list[SrvRecord] = []
    for priority in sorted({record.priority for record in usable}):
        group = [record for record in usable if record.priority == priority]
        # Zero weights first, so that they are picked only when the draw is 0.
        group.sort(key=lambda record: record.weight != 0)
        while group:
            total = sum(record.weight for record in group)
            if total == 0:  # all equal: any order will do, so spread the load
                ordered.append(group.pop(rng.randrange(len(group))))
                continue
            # The RFC draws from 0 to the sum inclusive, which hands the 0 to the first
            # record: a bias towards it when it has a weight. Here 0 is drawn only when
            # there is a zero-weight record to take it.
            has_zero = group[0].weight == 0
            draw = rng.randint(0 if has_zero else 1, total)
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= draw:
                    ordered.append(group.pop(index))
                    break
    return ordered
