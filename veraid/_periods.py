"""Closed date periods: every VeraId validity period includes both its ends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from veraid._errors import ValidityPeriodError


@dataclass(frozen=True, slots=True)
class DatePeriod:
    """The instants from ``start`` to ``end``, both included; both timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValidityPeriodError("Dates must be timezone-aware")
        if self.end < self.start:
            raise ValidityPeriodError(f"Period ends before it starts ({self})")

    @classmethod
    def at(cls, instant: datetime) -> DatePeriod:
        """The period made of one instant."""
        return cls(instant, instant)

    def intersect(self, other: DatePeriod) -> DatePeriod | None:
        """The instants in both periods, or ``None`` if they do not overlap."""
        start = max(self.start, other.start)
        end = min(self.end, other.end)
        if end < start:
            return None
        return DatePeriod(start, end)

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def require_overlap(required: DatePeriod, other: DatePeriod, what: str) -> DatePeriod:
    """``required`` ∩ ``other``; ValidityPeriodError naming ``what`` when they do not overlap."""
    intersection = required.intersect(other)
    if intersection is None:
        raise ValidityPeriodError(
            f"{what} ({other}) does not overlap with the required period ({required})"
        )
    return intersection
