"""The ``connection-params-request`` message: the domain name of an Awala Internet endpoint.

The content is the domain name in UTF-8 (the Android client sends the text as typed). As in
the original server, names over 128 bytes are refused before anything else. Unlike the
original, which used plain punycode and ad hoc rules (``is-valid-domain``), the name is
checked with IDNA 2008 and the UTS #46 mapping (the ``idna`` package), which is what the
DNS lookup needs anyway: the A-label form to query.

Accepted: IDNs (``はじめよう.みんな``), upper case (mapped to lower case), full-width dots,
one trailing dot. Refused: a single label, an empty label, characters IDNA disallows
(``_``, spaces, ``@``...), labels over 63 octets or starting or ending with ``-``, and an
all-numeric top-level label (``1.2.3.4`` is an address, not a name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import idna

from letro.errors import MalformedConnectionParamsRequest, excerpt

MAX_REQUESTED_NAME_BYTES: Final = 128


@dataclass(frozen=True, slots=True)
class ConnectionParamsRequest:
    """A valid request for the connection parameters of ``domain_name``.

    Attributes:
        domain_name: The name as the agent sent it (decoded from UTF-8).
        ascii_domain_name: Its IDNA A-label form, lower case, without a trailing dot:
            what to look up in the DNS.
    """

    domain_name: str
    ascii_domain_name: str


def parse_connection_params_request(content: bytes) -> ConnectionParamsRequest:
    """Check the content of a ``connection-params-request`` message.

    Raises:
        MalformedConnectionParamsRequest: if the content is not a usable domain name. No
            other exception escapes, whatever the bytes.
    """
    if len(content) > MAX_REQUESTED_NAME_BYTES:
        raise MalformedConnectionParamsRequest(
            f"Requested domain name is too long ({len(content)} bytes, at most"
            f" {MAX_REQUESTED_NAME_BYTES})"
        )
    try:
        name = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedConnectionParamsRequest(
            f"Requested domain name is not valid UTF-8: {excerpt(content)}"
        ) from exc
    return ConnectionParamsRequest(domain_name=name, ascii_domain_name=to_ascii_domain_name(name))


def to_ascii_domain_name(name: str) -> str:
    """The A-label form of ``name`` if it is a domain name of two labels or more.

    Raises:
        MalformedConnectionParamsRequest: if it is not.
    """
    try:
        # std3_rules: only letters, digits and hyphens in the ASCII result (no "_" or "*").
        encoded = idna.encode(name, uts46=True, std3_rules=True, transitional=False)
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise MalformedConnectionParamsRequest(
            f"Requested domain name is malformed ({exc}): {excerpt(name)}"
        ) from exc
    ascii_name = encoded.decode("ascii").removesuffix(".")
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise MalformedConnectionParamsRequest(
            f"Requested domain name has a single label: {excerpt(name)}"
        )
    if labels[-1].isdigit():
        raise MalformedConnectionParamsRequest(
            f"Requested domain name has an all-numeric top-level label: {excerpt(name)}"
        )
    return ascii_name
