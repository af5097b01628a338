"""Exceptions raised by the :mod:`letro` protocol helpers."""

from __future__ import annotations

# Messages quote what was wrong, but only a bounded excerpt of it: the input comes from
# arbitrary Awala peers and the messages end up in operator log lines.
_MAX_EXCERPT_LENGTH = 100


class LetroProtocolError(Exception):
    """Base class for every error raised by the :mod:`letro` package."""


class InvalidVeraidId(LetroProtocolError):
    """A string is not a well-formed VeraId user id such as ``alice@example.com``."""


class MalformedPairingRequest(LetroProtocolError):
    """The content of a legacy (CSV) contact pairing request is malformed."""


def excerpt(value: str | bytes) -> str:
    """Return the ``repr`` of ``value``, cut to about 100 characters."""
    quoted = repr(value[: _MAX_EXCERPT_LENGTH + 1])
    if len(value) <= _MAX_EXCERPT_LENGTH and len(quoted) <= _MAX_EXCERPT_LENGTH:
        return quoted
    return quoted[: _MAX_EXCERPT_LENGTH - 3] + "..."


class MalformedConnectionParamsRequest(LetroProtocolError):
    """The content of a connection parameters request is not a usable domain name."""


class MalformedAccountRequest(LetroProtocolError):
    """An account creation request is not a DER ``AccountRequestSignature``."""


class UnsupportedAccountKey(LetroProtocolError):
    """The public key of an account creation request is of a type or shape we do not verify."""


class InvalidAccountRequestSignature(LetroProtocolError):
    """The signature of an account creation request does not verify with its own key."""


class UnusableMemberKey(LetroProtocolError):
    """The key of a verified account request cannot be a VeraId member key (not RSA, or an
    RSA size or exponent VeraId refuses), so the Authority could never issue its bundle."""
