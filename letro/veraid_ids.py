"""VeraId user ids (``alice@example.com``) and the domain name rules they rely on.

Both follow the original Letro server, so that agents see the same ids accepted and refused:
domain names as ``is-valid-domain@0.1.6`` judges them with ``allowUnicode: true``, and user
ids as its ``isValidVeraidIdForUser``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from letro.errors import InvalidVeraidId, excerpt

MAX_DOMAIN_NAME_LENGTH: Final = 253

# punycode.toASCII treats these like "." (it maps them before splitting into labels).
_DOT_EQUIVALENTS: Final = str.maketrans(dict.fromkeys("\u3002\uff0e\uff61", "."))

# The Thai block is allowed as in the original, although it can never be left after the
# punycode conversion, which turns every non-ASCII label into "xn--...".
_ALLOWED_CHARS: Final = re.compile(r"[\u0e00-\u0e7fa-z0-9\-._*]+")
# "^" inside the lookahead anchors at the start of the TLD, so only a TLD without the xn--
# prefix must not be all digits: "xn--123" passes, as it does in the original.
_TLD: Final = re.compile(r"(?:xn--)?(?!^\d+\Z)[\u0e00-\u0e7fa-z0-9]+")
_LABEL: Final = re.compile(r"[\u0e00-\u0e7fa-zA-Z0-9\-_]+")
_LAST_LABEL: Final = re.compile(r"[\u0e00-\u0e7fa-zA-Z0-9\-]+")
_DOUBLE_DASH: Final = re.compile(r"--(?:--)?")
_MAX_LABEL_LENGTH: Final = 63

# VeraId sets no limit on user names; ours keeps every id built from two VeraId ids (a pair
# workflow's, say) within Temporal's limits. Letro's own names are far shorter (20 at most
# in the original server).
MAX_USER_NAME_BYTES: Final = 128

# What VeraId forbids in user names (validateUserName in @relaycorp/veraid).
_FORBIDDEN_USER_NAME_CHARS: Final = frozenset("@\t\r\n")
# JavaScript's "." does not match these; the original id regex is /^([^@]+)@(.+[^\\.])$/u.
_JS_LINE_TERMINATORS: Final = frozenset("\n\r\u2028\u2029")


def is_valid_domain_name(name: str) -> bool:
    """Tell whether ``name`` is a domain name by the rules of ``is-valid-domain@0.1.6``.

    The rules are those of ``isValidDomain(name, {allowUnicode: true})``: the name is
    lower-cased, one trailing dot is dropped and each non-ASCII label is converted with
    plain punycode (not IDNA2008). The result must have at most 253 characters, at least two
    labels, a TLD that is not all digits, labels shorter than 64 characters that neither
    start nor end with ``-``, and ``_`` or ``--`` (other than ``xn--``) nowhere in the label
    just before the TLD.

    Deviation: the original also treats about 1,400 known second-level domains (``co.uk``,
    ``com.au``, ...) as the TLD, which makes it apply the last-label rules to the label
    before them. That table is not reproduced here, so names such as ``a_b.co.uk`` or
    ``x--y.co.uk`` are accepted although the original refuses them, and a few names with
    junk after such a suffix (``foo.co.uk-x``) are refused although the original accepts
    them.
    """
    value = name.lower()
    if value.endswith("."):
        value = value[:-1]
    # Punycode never makes a label shorter, so a name that is already too long can be
    # refused before paying for the conversion.
    if len(value) > MAX_DOMAIN_NAME_LENGTH:
        return False
    ascii_value = _to_ascii(value)
    if ascii_value is None or len(ascii_value) > MAX_DOMAIN_NAME_LENGTH:
        return False
    if _ALLOWED_CHARS.fullmatch(ascii_value) is None:
        return False

    *labels, tld = ascii_value.split(".")
    if not labels or _TLD.fullmatch(tld) is None:
        return False
    last_index = len(labels) - 1
    return all(_is_valid_label(label, is_last=i == last_index) for i, label in enumerate(labels))


def _to_ascii(value: str) -> str | None:
    # punycode.toASCII keeps whatever precedes an "@" as is, so the result would contain
    # "@" and fail the character check anyway: refuse it straight away.
    if "@" in value:
        return None
    labels = value.translate(_DOT_EQUIVALENTS).split(".")
    try:
        return ".".join(label if label.isascii() else _punycode(label) for label in labels)
    except UnicodeError:
        return None


def _punycode(label: str) -> str:
    return "xn--" + label.encode("punycode").decode("ascii")


def _is_valid_label(label: str, *, is_last: bool) -> bool:
    if is_last:
        if _LAST_LABEL.fullmatch(label) is None:
            return False
        # Dashes in pairs are only allowed as part of the IDN prefix "xn--".
        if len(_DOUBLE_DASH.findall(label)) != label.count("xn--"):
            return False
    elif _LABEL.fullmatch(label) is None:
        return False
    return len(label) <= _MAX_LABEL_LENGTH and not label.startswith("-") and not label.endswith("-")


@dataclass(frozen=True, slots=True)
class VeraidUserId:
    """A VeraId user id: a user name and the domain name of its organisation.

    Both parts are kept exactly as given (no case folding), so ``str()`` gives back the
    original id.

    Raises:
        InvalidVeraidId: if the parts do not form a valid user id.
    """

    user_name: str
    domain_name: str

    def __post_init__(self) -> None:
        _check_user_name(self.user_name)
        _check_domain_name(self.domain_name)

    def __str__(self) -> str:
        return f"{self.user_name}@{self.domain_name}"


def _check_user_name(user_name: str) -> None:
    if not user_name:
        raise InvalidVeraidId("The user name of a VeraId user id must not be empty")
    try:
        length = len(user_name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 text, so no id anywhere
        raise InvalidVeraidId(f"User name {excerpt(user_name)} is not valid Unicode") from None
    if length > MAX_USER_NAME_BYTES:
        raise InvalidVeraidId(
            f"User name {excerpt(user_name)} is longer than {MAX_USER_NAME_BYTES} bytes"
        )
    forbidden = sorted(_FORBIDDEN_USER_NAME_CHARS.intersection(user_name))
    if forbidden:
        raise InvalidVeraidId(
            f"User name {excerpt(user_name)} contains {''.join(forbidden)!r}; VeraId user names"
            " must not contain '@', tabs or line breaks"
        )


def _check_domain_name(domain_name: str) -> None:
    # The original's regex needs at least two characters after the "@", no line terminator
    # before the last one and neither "." nor "\" as the last one. In particular it refuses
    # a trailing dot that is-valid-domain alone would accept.
    if len(domain_name) < 2 or domain_name[-1] in ".\\":
        raise InvalidVeraidId(
            f"Domain name {excerpt(domain_name)} must have at least two characters and must not"
            " end with '.' or '\\'"
        )
    if not _JS_LINE_TERMINATORS.isdisjoint(domain_name[:-1]):
        raise InvalidVeraidId(f"Domain name {excerpt(domain_name)} contains a line break")
    if not is_valid_domain_name(domain_name):
        raise InvalidVeraidId(f"Domain name {excerpt(domain_name)} is not a valid domain name")


def parse_veraid_user_id(value: str) -> VeraidUserId:
    """Parse a VeraId user id such as ``alice@example.com``.

    The user name is everything before the first ``@``; it must not be empty nor contain
    ``@``, tabs or line breaks. The rest must be a domain name by
    :func:`is_valid_domain_name` that does not end with a dot. A bare domain name (a VeraId
    bot, such as ``example.com``) is refused.

    Raises:
        InvalidVeraidId: if ``value`` is not a VeraId user id.
    """
    user_name, at_sign, domain_name = value.partition("@")
    if not at_sign:
        raise InvalidVeraidId(
            f"{excerpt(value)} is not a VeraId user id: it has no '@' (a bare domain name"
            " identifies a bot, not a user)"
        )
    return VeraidUserId(user_name, domain_name)


def pairing_key(veraid_id: str) -> str:
    """The form of a VeraId user id under which contact pairing requests are matched.

    Both parts are lower-cased and the domain name is converted to punycode, so that a user
    typing ``Bob@Example.com`` pairs with ``bob@example.com``. Domain names are
    case-insensitive anyway (and an internationalised one has one ASCII form). VeraId itself
    compares user names exactly, but Letro creates every account name in lower case
    (``sanitiseUserName`` in the original server), so folding the user name cannot merge
    two Letro users; it only forgives how the contact's id was typed.

    Raises:
        InvalidVeraidId: if ``veraid_id`` is not a VeraId user id.
    """
    user_id = parse_veraid_user_id(veraid_id)
    ascii_domain = _to_ascii(user_id.domain_name.lower())
    if ascii_domain is None:  # the id was just validated, conversion included: unreachable
        raise InvalidVeraidId(f"Domain name {excerpt(user_id.domain_name)} has no ASCII form")
    return f"{user_id.user_name.lower()}@{ascii_domain}"
