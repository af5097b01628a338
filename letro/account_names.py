# ruff: noqa: RUF002, RUF003  (look-alike characters in docs are deliberate examples)
"""Naming rules for new accounts: sanitising the requested user name, picking the domain.

Reserved words are matched on Unicode confusable skeletons (UTS #39) computed by ICU's
SpoofChecker, so look-alikes from other scripts, full-width forms, accents and separators
cannot smuggle a reserved word through.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from random import Random
from typing import Final

import icu

DEFAULT_MAX_NAME_LENGTH: Final = 16
DEFAULT_RESERVED_WORDS: Final = (
    "admin",
    "support",
    "help",
    "relaycorp",
    "awala",
    "letro",
    "vera",
    "gusnarea",
    "gustavonarea",
    "gnarea",
)
DEFAULT_DOMAINS_BY_LOCALE: Final[Mapping[str, str]] = {
    "en-us": "applepie.rocks",
    "en-gb": "cuppa.fans",
    "es-ve": "guarapo.cafe",
}
DEFAULT_FALLBACK_DOMAIN: Final = "nautilus.ink"

# Python's str.isspace() covers every Unicode White_Space character plus the separators
# JavaScript's \s also matches (U+FEFF is not whitespace in Unicode, but the original removed it).
_EXTRA_REMOVED = "\ufeff"

# Words for random names: short, plain and inoffensive, so "adjective-noun" stays readable.
_ADJECTIVES: Final = (
    "amber", "bold", "brave", "bright", "calm", "clever", "cosy", "crisp", "eager", "fancy",
    "gentle", "glad", "golden", "happy", "jolly", "keen", "kind", "lively", "lucky", "merry",
    "mighty", "misty", "noble", "proud", "quick", "quiet", "rapid", "shiny", "silver", "sunny",
    "swift", "tidy", "witty", "zesty",
)  # fmt: skip
_NOUNS: Final = (
    "badger", "beetle", "bison", "comet", "coral", "falcon", "fern", "finch", "fox", "gecko",
    "heron", "koala", "lark", "lemur", "lynx", "maple", "meadow", "otter", "panda", "pebble",
    "puffin", "quokka", "raven", "river", "robin", "salmon", "sparrow", "tiger", "tulip",
    "walrus", "willow", "wombat",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class NamingRules:
    max_length: int = DEFAULT_MAX_NAME_LENGTH
    reserved_words: Sequence[str] = DEFAULT_RESERVED_WORDS
    domains_by_locale: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_DOMAINS_BY_LOCALE)
    )
    fallback_domain: str = DEFAULT_FALLBACK_DOMAIN


@lru_cache(maxsize=1)
def _spoof_checker() -> icu.SpoofChecker:
    return icu.SpoofChecker()


def confusable_skeleton(text: str) -> str:
    """A comparison key that look-alike strings share.

    UTS #39 skeletons map each character to its prototype (``ѕ`` → ``s``, ``Ａ`` → ``A``,
    ``m`` → ``rn``). On top of that we fold case, drop combining marks (accents) and keep only
    letters and digits, so separators between the letters of a word do not hide it. The
    skeleton is taken again after case folding because folding can produce new confusables.
    """
    checker = _spoof_checker()
    # NFKC first: skeleton data leaves compatibility forms such as circled letters alone.
    skeleton = checker.getSkeleton(0, unicodedata.normalize("NFKC", text)).casefold()
    skeleton = checker.getSkeleton(0, skeleton).casefold()
    decomposed = unicodedata.normalize("NFD", skeleton)
    return "".join(char for char in decomposed if unicodedata.category(char)[0] in ("L", "N"))


def _is_single_letter_or_emoji(name: str) -> bool:
    if len(name) == 1 and unicodedata.category(name)[0] == "L":
        return True
    # Emoji sequences (flags, ZWJ families, skin tones) are made of symbols and joiners only.
    # Symbols that are compatibility forms of letters (circled ⓐ) do not count.
    symbols = [char for char in name if unicodedata.category(char) == "So"]
    return (
        bool(symbols)
        and all(unicodedata.category(char) in ("So", "Sk", "Mn", "Me", "Cf") for char in name)
        and not any(unicodedata.normalize("NFKC", char).isalnum() for char in symbols)
    )


def contains_reserved_word(names: Iterable[str], reserved_words: Iterable[str]) -> bool:
    """Whether any of ``names`` contains a look-alike of a reserved word.

    Skeletons are case-sensitive (``I`` looks like ``l``, ``i`` does not), so each word is
    matched in lower and upper case.
    """
    skeletons = [confusable_skeleton(name) for name in names]
    words = {
        skeleton
        for word in reserved_words
        for skeleton in (confusable_skeleton(word), confusable_skeleton(word.upper()))
        if skeleton
    }
    return any(word in skeleton for word in words for skeleton in skeletons)


def random_user_name(random: Random, max_length: int = DEFAULT_MAX_NAME_LENGTH) -> str:
    """A readable name such as ``swift-otter``, cut to ``max_length``."""
    name = f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}"
    return name[:max_length].rstrip("-")


_REMOVED = re.compile(r"[\s@" + _EXTRA_REMOVED + "]")


def sanitise_user_name(requested: str, rules: NamingRules, random: Random) -> str:
    """The user name to register for ``requested``: whitespace and ``@`` removed, lower case,
    at most ``rules.max_length`` characters; a random name if nothing usable is left or if it
    contains a reserved word."""
    stripped = _REMOVED.sub("", requested)
    # Cut after lower-casing: some characters lengthen when lowered (İ -> i̇).
    name = stripped.lower()[: rules.max_length]
    if not name or any(unicodedata.category(char) == "Cc" for char in name):
        return random_user_name(random, rules.max_length)
    if _is_single_letter_or_emoji(name):
        return name
    skeleton = confusable_skeleton(name)
    if not skeleton and not any(unicodedata.category(char) == "So" for char in name):
        return random_user_name(random, rules.max_length)  # only punctuation, e.g. "---"
    # The name as typed is checked too: capitals from other scripts (Greek ΑDΜΙΝ) look like
    # Latin capitals but their lower case does not look like Latin lower case.
    if contains_reserved_word((name, stripped), rules.reserved_words):
        return random_user_name(random, rules.max_length)
    return name


def name_with_suffix(name: str, random: Random) -> str:
    """``name`` with a random numeric suffix, for when ``name`` is taken: ``alice-12345``."""
    return f"{name}-{random.randint(10000, 99999)}"


def domain_for_locale(locale: str, rules: NamingRules) -> str:
    return rules.domains_by_locale.get(locale.lower(), rules.fallback_domain)
