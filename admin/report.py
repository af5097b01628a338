"""What a command hands back to be printed: text lines, the same as JSON, and an exit status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Exit statuses: as the worker, 2 for a command or configuration that cannot run at all.
OK = 0
FAILED = 1  # something the command had to do was not done (said in its output)
USAGE = 2


@dataclass(frozen=True)
class Report:
    lines: list[str]
    data: dict[str, Any]
    status: int = OK


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 request``, ``2 requests``."""
    word = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count} {word}"


def listing(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"
