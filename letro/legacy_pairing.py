"""The legacy (CSV) contact pairing messages: ``pairing-request-tmp`` and ``pairing-match-tmp``.

A request is the UTF-8 text ``requesterVeraidId,targetVeraidId,base64(requesterIdKey)``;
a match is ``ownVeraidId,contactVeraidId,contactEndpointId,base64(contactIdKey)``. Neither
is signed: the ids are only checked for their syntax.

Decisions where the original server is lax:

- Ids are taken verbatim. Whitespace around them is not stripped, because a VeraId user
  name may legitimately start with a space; it is judged by the id rules like any other
  character (a trailing space, for instance, makes the domain name invalid).
- The key must be canonical base64 as the Android client writes it
  (``Base64.NO_WRAP``): standard alphabet, padding required, no whitespace or line breaks,
  and unused trailing bits set to zero. The original accepted anything Node's lenient
  decoder would turn into bytes.
- Fields after the third are ignored, as in the original.
- A request whose requester and target are the same string is refused.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final

from letro.errors import InvalidVeraidId, MalformedPairingRequest, excerpt
from letro.veraid_ids import parse_veraid_user_id

_SEPARATOR: Final = ","
_REQUEST_FIELD_COUNT: Final = 3


@dataclass(frozen=True, slots=True)
class LegacyPairingRequest:
    """A legacy contact pairing request, as sent with the ``pairing-request-tmp`` type.

    Attributes:
        requester_veraid_id: The VeraId user id of the sender, e.g. ``alice@applepie.rocks``.
        target_veraid_id: The VeraId user id of the prospective contact.
        requester_id_key: The DER-encoded public key of the sender's Awala endpoint.

    Raises:
        MalformedPairingRequest: if an id is not a VeraId user id, both ids are the same
            or the key is empty.
    """

    requester_veraid_id: str
    target_veraid_id: str
    requester_id_key: bytes

    def __post_init__(self) -> None:
        _check_veraid_id(self.requester_veraid_id, "requester")
        _check_veraid_id(self.target_veraid_id, "target")
        if self.requester_veraid_id == self.target_veraid_id:
            raise MalformedPairingRequest(
                f"Requester and target are the same VeraId id ({excerpt(self.target_veraid_id)})"
            )
        if not self.requester_id_key:
            raise MalformedPairingRequest("The requester's Awala endpoint key is empty")


def _check_veraid_id(veraid_id: str, role: str) -> None:
    try:
        parse_veraid_user_id(veraid_id)
    except InvalidVeraidId as exc:
        raise MalformedPairingRequest(f"Invalid {role} VeraId id: {exc}") from exc


def parse_pairing_request(content: bytes) -> LegacyPairingRequest:
    """Parse the content of a ``pairing-request-tmp`` message.

    Raises:
        MalformedPairingRequest: for any content that is not a valid request. No other
            exception escapes, whatever the bytes.
    """
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPairingRequest(
            f"Pairing request is not valid UTF-8 (at byte {exc.start}): {excerpt(content)}"
        ) from exc

    fields = text.split(_SEPARATOR)
    if len(fields) < _REQUEST_FIELD_COUNT:
        raise MalformedPairingRequest(
            f"Pairing request has {len(fields)} comma-separated field(s) instead of"
            f" {_REQUEST_FIELD_COUNT}: {excerpt(text)}"
        )
    requester_veraid_id, target_veraid_id, key_base64 = fields[:_REQUEST_FIELD_COUNT]
    return LegacyPairingRequest(
        requester_veraid_id=requester_veraid_id,
        target_veraid_id=target_veraid_id,
        requester_id_key=_decode_key(key_base64),
    )


def _decode_key(key_base64: str) -> bytes:
    if not key_base64:
        raise MalformedPairingRequest("The requester's Awala endpoint key is empty")
    try:
        key = base64.b64decode(key_base64.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise MalformedPairingRequest(
            f"The requester's Awala endpoint key is not valid base64: {excerpt(key_base64)}"
        ) from exc
    # b64decode ignores the unused bits of the last character; requiring them to be zero
    # gives each key exactly one accepted spelling.
    if base64.b64encode(key).decode("ascii") != key_base64:
        raise MalformedPairingRequest(
            f"The requester's Awala endpoint key is not canonical base64: {excerpt(key_base64)}"
        )
    return key


def serialise_pairing_match(
    *,
    own_veraid_id: str,
    contact_veraid_id: str,
    contact_endpoint_id: str,
    contact_id_key: bytes,
) -> bytes:
    """Serialise the content of a ``pairing-match-tmp`` message.

    The recipient's own VeraId id comes first, then its contact's, as the original server
    sends and the Letro Android client parses them (the published docs show the opposite
    order).

    Args:
        own_veraid_id: The VeraId user id of the recipient of the match.
        contact_veraid_id: The VeraId user id of the recipient's new contact.
        contact_endpoint_id: The Awala endpoint id of the contact.
        contact_id_key: The DER-encoded public key of the contact's Awala endpoint.

    Raises:
        ValueError: if a field is empty or contains a comma, which would break the framing.
    """
    text_fields = {
        "own_veraid_id": own_veraid_id,
        "contact_veraid_id": contact_veraid_id,
        "contact_endpoint_id": contact_endpoint_id,
    }
    for name, value in text_fields.items():
        if not value or _SEPARATOR in value:
            raise ValueError(f"{name} must be non-empty and free of commas: {excerpt(value)}")
    if not contact_id_key:
        raise ValueError("contact_id_key must not be empty")
    key_base64 = base64.b64encode(contact_id_key).decode("ascii")
    return _SEPARATOR.join([*text_fields.values(), key_base64]).encode("utf-8")
