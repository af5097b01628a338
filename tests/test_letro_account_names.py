# ruff: noqa: RUF001  (look-alike characters are the point of these tests)
"""Naming rules: sanitisation table (reference §1.1 probes), homoglyph attacks, domains."""

from __future__ import annotations

from random import Random

import pytest

from letro.account_names import (
    NamingRules,
    confusable_skeleton,
    domain_for_locale,
    name_with_suffix,
    random_user_name,
    sanitise_user_name,
)

RULES = NamingRules()
RANDOM = object()  # marker: a random readable name is expected


def _sanitise(name: str, rules: NamingRules = RULES) -> str:
    return sanitise_user_name(name, rules, Random(1))


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("a", "a"),
        ("alice", "alice"),
        ("こんにちは", "こんにちは"),
        ("ALICE", "alice"),
        ("MAÑANA", "mañana"),
        ("hey-👋", "hey-👋"),
        ("🇦🇶-cold", "🇦🇶-cold"),
        ("😍🇮🇸", "😍🇮🇸"),
        ("你", "你"),
        ("🍕", "🍕"),
        ("🇬🇧", "🇬🇧"),
        ("👨\u200d👩\u200d👦", "👨\u200d👩\u200d👦"),
        ("2", "2"),
        ("二", "二"),
        ("relay", "relay"),
        ("veronica", "veronica"),
        (" alice", "alice"),
        ("\talice", "alice"),
        ("ali ce", "alice"),
        ("ali@ce", "alice"),
        ("a" * 21, "a" * 16),
        ("x\u00a0y", "xy"),
        ("x\ufeffy", "xy"),
        ("x\u2028y", "xy"),
        ("x\u3000y", "xy"),
        ("x\u200by", "x\u200by"),
        ("José", "josé"),
        ("Ωmega", "ωmega"),
        ("İstanbul", "i̇stanbul"),
        ("ǅ", "ǆ"),
        ("Ж", "ж"),
        ("é", "é"),
        # Reserved words, however they are written.
        ("", RANDOM),
        ("\x00", RANDOM),
        ("\x00\x00", RANDOM),
        ("   ", RANDOM),
        ("@", RANDOM),
        ("---", RANDOM),
        ("__", RANDOM),
        ("admin", RANDOM),
        ("ADMIN", RANDOM),
        ("vera", RANDOM),
        ("helpful", RANDOM),
        ("superadmin99", RANDOM),
        ("gus.narea", RANDOM),
        ("gus narea", RANDOM),
        ("gus_narea", RANDOM),
        ("gusnaréa", RANDOM),
        ("Ａdmin", RANDOM),  # full-width A
        ("ѕupport", RANDOM),  # Cyrillic dze
        ("аdmіn", RANDOM),  # Cyrillic a and i
        ("ΑDΜΙΝ", RANDOM),  # Greek capitals
        ("adm1n", RANDOM),  # digit one for l/i
        ("a\u0301dmin", RANDOM),  # combining accent
        ("a\u200bdmin", RANDOM),  # zero-width space between letters
        ("rеlаусоrр", RANDOM),  # Cyrillic lookalikes mixed with Latin
        ("ⓛⓔⓣⓡⓞ", RANDOM),  # circled letters
        ("𝐚𝐰𝐚𝐥𝐚", RANDOM),  # mathematical bold
        ("l3tro", "l3tro"),  # 3 does not look like e: allowed
    ],
)
def test_sanitisation_table(requested: str, expected: object) -> None:
    result = _sanitise(requested)
    if expected is RANDOM:
        assert result == random_user_name(Random(1)), result
    else:
        assert result == expected


def test_random_names_are_readable_and_bounded() -> None:
    names = {random_user_name(Random(seed), 16) for seed in range(50)}
    assert len(names) > 20
    for name in names:
        assert 0 < len(name) <= 16
        assert name == name.lower()
        assert "@" not in name
        assert _sanitise(name) == name  # a random name never contains a reserved word


def test_max_length_and_reserved_words_are_configurable() -> None:
    rules = NamingRules(max_length=20, reserved_words=("bob",))
    assert _sanitise("a" * 25, rules) == "a" * 20
    assert _sanitise("admin", rules) == "admin"
    assert _sanitise("Bоb", rules) == random_user_name(Random(1), 20)


def test_skeleton_sees_through_lookalikes() -> None:
    assert confusable_skeleton("ѕupport") == confusable_skeleton("support")
    assert confusable_skeleton("Ａdmin") == confusable_skeleton("admin")
    assert confusable_skeleton("gus.naréa") == confusable_skeleton("gusnarea")


def test_suffix() -> None:
    name = name_with_suffix("alice", Random(3))
    assert name.startswith("alice-")
    assert len(name) == len("alice-12345")
    assert name[6:].isdigit()


@pytest.mark.parametrize(
    ("locale", "domain"),
    [
        ("en-us", "applepie.rocks"),
        ("EN-US", "applepie.rocks"),
        ("en-gb", "cuppa.fans"),
        ("es-ve", "guarapo.cafe"),
        ("Es-Ve", "guarapo.cafe"),
        ("es", "nautilus.ink"),
        ("en", "nautilus.ink"),
        ("", "nautilus.ink"),
        ("THIS CAN NEVER BE A LOCALE", "nautilus.ink"),
    ],
)
def test_domain_for_locale(locale: str, domain: str) -> None:
    assert domain_for_locale(locale, RULES) == domain


def test_domains_are_configurable() -> None:
    rules = NamingRules(domains_by_locale={"fr-fr": "croissant.test"}, fallback_domain="x.test")
    assert domain_for_locale("FR-fr", rules) == "croissant.test"
    assert domain_for_locale("en-us", rules) == "x.test"
