import dataclasses
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from letro import InvalidVeraidId, LetroProtocolError, VeraidUserId, parse_veraid_user_id
from letro.veraid_ids import MAX_DOMAIN_NAME_LENGTH, is_valid_domain_name

# Each expectation below was checked against is-valid-domain@0.1.6 itself
# (isValidDomain(name, {allowUnicode: true})).
DOMAIN_NAMES = [
    # The probe results from the research notes.
    ("example.com", True),
    ("malformed", False),
    ("はじめよう.みんな", True),
    ("example.com.", True),
    ("a_b.com", False),
    ("-a.com", False),
    ("1.2.3.4", False),
    ("localhost", False),
    ("EXAMPLE.COM", True),
    ("foo.123", False),
    # Unicode goes through plain punycode, and the ideographic full stops count as dots.
    ("xn--p8j9a0d9c9a.xn--q9jyb4c", True),
    ("bücher.example", True),
    ("BÜCHER.example", True),
    ("example\u3002com", True),
    ("example\uff0ecom", True),
    # A line terminator inside a label is punycoded like any other non-ASCII character.
    ("ex\u2028ample.com", True),
    # Labels.
    ("a.b.example.com", True),
    ("a_b.example.com", True),
    ("a--b.com", False),
    ("xn--a.com", True),
    ("a-.com", False),
    ("a*.com", False),
    ("exa mple.com", False),
    (".example.com", False),
    ("example.com..", False),
    ("", False),
    (".", False),
    # TLDs: only one made of digits alone, without the IDN prefix, is refused.
    ("example.c0m", True),
    ("example.123a", True),
    ("foo.xn--123", True),
    ("example.co_m", False),
    # Anything after the name itself.
    ("example.com\n", False),
    ("example.com ", False),
    ("alice@example.com", False),
]


@pytest.mark.parametrize(("name", "expected"), DOMAIN_NAMES)
def test_domain_name_validity(name: str, expected: bool) -> None:
    assert is_valid_domain_name(name) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a" * 63 + ".com", True),
        ("a" * 64 + ".com", False),
        # 57 "é" make a 63-character "xn--" label, 58 make 64: the length rule applies to
        # the punycode form, not to the Unicode one.
        ("é" * 57 + ".com", True),
        ("é" * 58 + ".com", False),
    ],
)
def test_label_length_limit(name: str, expected: bool) -> None:
    assert is_valid_domain_name(name) is expected


def _name_of_length(length: int) -> str:
    labels = ["a" * 63] * 3 + ["a" * (length - 3 * 64 - 4), "com"]
    name = ".".join(labels)
    assert len(name) == length
    return name


def test_name_length_limit() -> None:
    assert is_valid_domain_name(_name_of_length(MAX_DOMAIN_NAME_LENGTH))
    assert not is_valid_domain_name(_name_of_length(MAX_DOMAIN_NAME_LENGTH + 1))
    # The trailing dot is dropped before the length is checked.
    assert is_valid_domain_name(_name_of_length(MAX_DOMAIN_NAME_LENGTH) + ".")


def test_very_long_name_is_refused() -> None:
    assert not is_valid_domain_name("é" * 1_000_000 + ".com")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # The original refuses these two because it treats "co.uk" as the TLD, making
        # "under_score" and "x--y" the last label before it; see is_valid_domain_name.
        ("under_score.co.uk", True),
        ("x--y.co.uk", True),
        # The original accepts this one by matching "co.uk" and ignoring what follows.
        ("foo.co.uk-x", False),
    ],
)
def test_second_level_domain_table_is_not_reproduced(name: str, expected: bool) -> None:
    assert is_valid_domain_name(name) is expected


VALID_USER_IDS = [
    ("alice@example.com", "alice", "example.com"),
    ("alice@はじめよう.みんな", "alice", "はじめよう.みんな"),
    ("Alice@EXAMPLE.COM", "Alice", "EXAMPLE.COM"),
    ("maría@guarapo.cafe", "maría", "guarapo.cafe"),
    ("alice@a_b.example.com", "alice", "a_b.example.com"),
    ("alice@xn--p8j9a0d9c9a.xn--q9jyb4c", "alice", "xn--p8j9a0d9c9a.xn--q9jyb4c"),
    ("alice@example\u3002com", "alice", "example\u3002com"),
    # VeraId only forbids "@", tabs and line feeds/carriage returns in user names.
    (" alice@example.com", " alice", "example.com"),
    ("al ice@example.com", "al ice", "example.com"),
    ("alice,bob@example.com", "alice,bob", "example.com"),
    ("alice\u2028@example.com", "alice\u2028", "example.com"),
]


@pytest.mark.parametrize(("value", "user_name", "domain_name"), VALID_USER_IDS)
def test_valid_user_id(value: str, user_name: str, domain_name: str) -> None:
    veraid_id = parse_veraid_user_id(value)

    assert veraid_id == VeraidUserId(user_name=user_name, domain_name=domain_name)
    assert str(veraid_id) == value


INVALID_USER_IDS = [
    # The examples from the original server's tests and notes.
    ("example.com", "no '@'"),
    ("alice\n@org", "line breaks"),
    ("alice@example dot com", "not a valid domain name"),
    ("alice@org@example dot com", "not a valid domain name"),
    ("alice@org.", "must not end with '.'"),
    ("@target@foo.bar", "must not be empty"),
    # Others.
    ("", "no '@'"),
    ("alice", "no '@'"),
    ("alice\t@example.com", "tabs"),
    ("alice\r@example.com", "line breaks"),
    ("@example.com", "must not be empty"),
    ("alice@", "at least two characters"),
    ("alice@a", "at least two characters"),
    ("alice@example.com\\", "must not end with '.' or '\\'"),
    ("alice@example.com.", "must not end with '.'"),
    ("alice@ex\u2028ample.com", "line break"),
    ("alice@ex\nample.com", "line break"),
    ("alice@example.com ", "not a valid domain name"),
    ("alice@@example.com", "not a valid domain name"),
    ("alice@malformed", "not a valid domain name"),
    ("alice@1.2.3.4", "not a valid domain name"),
]


@pytest.mark.parametrize(("value", "reason"), INVALID_USER_IDS)
def test_invalid_user_id(value: str, reason: str) -> None:
    with pytest.raises(InvalidVeraidId) as exc_info:
        parse_veraid_user_id(value)

    assert reason in str(exc_info.value)


def test_invalid_user_id_is_a_letro_protocol_error() -> None:
    with pytest.raises(LetroProtocolError):
        parse_veraid_user_id("example.com")


@pytest.mark.parametrize(
    "value",
    [
        "x" * 10_000,
        "x" * 10_000 + "\t@example.com",
        "alice@" + "x" * 10_000,
        "\n" * 10_000 + "@a.b",
    ],
)
def test_error_message_quotes_a_bounded_excerpt(value: str) -> None:
    with pytest.raises(InvalidVeraidId) as exc_info:
        parse_veraid_user_id(value)

    assert len(str(exc_info.value)) < 250


def test_user_names_are_limited_to_128_bytes() -> None:
    # Neither VeraId nor the original server limits their length; ours keeps workflow ids
    # built from two ids within Temporal's limits. Bytes, not characters, are counted.
    assert str(parse_veraid_user_id("x" * 128 + "@example.com")) == "x" * 128 + "@example.com"
    assert str(parse_veraid_user_id("é" * 64 + "@example.com")) == "é" * 64 + "@example.com"
    for too_long in ("x" * 129, "é" * 65, "x" * 10_000):
        with pytest.raises(InvalidVeraidId, match="longer than 128 bytes"):
            parse_veraid_user_id(too_long + "@example.com")


@pytest.mark.parametrize(
    ("user_name", "domain_name"),
    [("", "example.com"), ("al@ice", "example.com"), ("alice", "org."), ("alice", "malformed")],
)
def test_constructor_validates(user_name: str, domain_name: str) -> None:
    with pytest.raises(InvalidVeraidId):
        VeraidUserId(user_name=user_name, domain_name=domain_name)


def test_user_id_is_immutable() -> None:
    veraid_id = parse_veraid_user_id("alice@example.com")

    with pytest.raises(dataclasses.FrozenInstanceError):
        veraid_id.user_name = "mallory"  # type: ignore[misc]


# Pieces that make strings look enough like ids to reach every rule.
_ID_PIECES = st.sampled_from(
    [
        *("a", "Z", "0", "9", "-", "_", ".", "*", "@", " ", "\\", "\n", "\r", "\t", "xn--"),
        *("--", "é", "は", "\u3002", "\uff61", "\u2028", "İ", "ß", "\ud800", ".com", "example"),
    ]
)
_ID_LIKE = st.lists(_ID_PIECES, max_size=20).map("".join)
_ANY_TEXT = st.text(st.characters(exclude_categories=()))


@settings(max_examples=500, deadline=None)
@given(st.one_of(_ID_LIKE, _ANY_TEXT))
def test_only_invalid_veraid_id_escapes(value: str) -> None:
    try:
        veraid_id = parse_veraid_user_id(value)
    except InvalidVeraidId:
        return
    assert str(veraid_id) == value
    assert "@" not in veraid_id.user_name


@settings(max_examples=500, deadline=None)
@given(st.one_of(_ID_LIKE, _ANY_TEXT))
def test_domain_name_check_never_raises(value: str) -> None:
    assert is_valid_domain_name(value) in (True, False)


_ASCII_LABELS = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?", fullmatch=True).filter(
    lambda label: "--" not in label
)
_USER_NAMES = st.text(st.characters(exclude_characters="@\t\r\n"), min_size=1, max_size=30)


@settings(deadline=None)
@given(
    _USER_NAMES,
    st.lists(_ASCII_LABELS, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,10}", fullmatch=True),
)
def test_well_formed_ids_are_accepted(user_name: str, labels: list[str], tld: str) -> None:
    domain_name = ".".join([*labels, tld])
    value = f"{user_name}@{domain_name}"

    assert parse_veraid_user_id(value) == VeraidUserId(user_name, domain_name)


def test_package_is_sans_io() -> None:
    code = (
        "import sys, letro\n"
        "io = {'temporalio', 'quart', 'pymongo', 'httpx', 'socket', 'asyncio'}\n"
        "loaded = io & set(sys.modules)\n"
        "print(sorted(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"
