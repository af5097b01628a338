import base64
import binascii
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import letro
from letro import (
    InvalidVeraidId,
    LegacyPairingRequest,
    LetroProtocolError,
    MalformedPairingRequest,
    parse_pairing_request,
    serialise_pairing_match,
)

ALICE = "alice@applepie.rocks"
BOB = "bob@tickety.boo"
BOB_ENDPOINT_ID = "055be8417a3d1dad19799e66596ac085fd5c68f0b1dbd9bfea5e39c072dd3cf88"
# Bytes whose base64 uses "+" and "/" and needs padding, so the alphabet and padding show.
KEY = bytes.fromhex("fbffbffbf0")
KEY_BASE64 = "+/+/+/A="
REQUEST = f"{ALICE},{BOB},{KEY_BASE64}".encode()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ACCOUNT_REQUEST", "application/vnd.relaycorp.letro.account-request"),
        ("ACCOUNT_CREATION", "application/vnd.relaycorp.letro.account-creation"),
        ("CONNECTION_PARAMS_REQUEST", "application/vnd.relaycorp.letro.connection-params-request"),
        ("CONNECTION_PARAMS", "application/vnd.relaycorp.letro.connection-params"),
        (
            "MISCONFIGURED_INTERNET_ENDPOINT",
            "application/vnd.relaycorp.letro.misconfigured-internet-endpoint",
        ),
        ("CONTACT_PAIRING_REQUEST", "application/vnd.relaycorp.letro.contact-pairing.request"),
        ("CONTACT_PAIRING_FAILURE", "application/vnd.relaycorp.letro.contact-pairing.failure"),
        ("PAIRING_AUTH", "application/vnd.relaycorp.letro.pairing-auth"),
        (
            "CONTACT_PAIRING_AUTHORISATION",
            "application/vnd.relaycorp.letro.contact-pairing.authorisation",
        ),
        ("PAIRING_REQUEST_TMP", "application/vnd.relaycorp.letro.pairing-request-tmp"),
        ("PAIRING_MATCH_TMP", "application/vnd.relaycorp.letro.pairing-match-tmp"),
        ("PAIRING_AUTH_TMP", "application/vnd.relaycorp.letro.pairing-auth-tmp"),
        ("PAIRING_COMPLETION_TMP", "application/vnd.relaycorp.letro.pairing-completion-tmp"),
    ],
)
def test_content_type(name: str, value: str) -> None:
    assert getattr(letro, name) == value
    assert value in letro.ALL_CONTENT_TYPES


def test_all_content_types_are_listed() -> None:
    assert len(letro.ALL_CONTENT_TYPES) == 13


def test_parse_request() -> None:
    request = parse_pairing_request(REQUEST)

    assert request == LegacyPairingRequest(
        requester_veraid_id=ALICE, target_veraid_id=BOB, requester_id_key=KEY
    )


def test_parse_request_with_unicode_ids() -> None:
    content = f"maría@はじめよう.みんな,{BOB},{KEY_BASE64}".encode()

    request = parse_pairing_request(content)

    assert request.requester_veraid_id == "maría@はじめよう.みんな"


def test_ids_are_kept_verbatim() -> None:
    # A leading space is part of a valid VeraId user name, and case is significant.
    content = f" alice@APPLEPIE.rocks,{BOB},{KEY_BASE64}".encode()

    request = parse_pairing_request(content)

    assert request.requester_veraid_id == " alice@APPLEPIE.rocks"


@pytest.mark.parametrize("extra", [b",", b",extra", b",x,y,z", b",\xc3\xa9"])
def test_fields_after_the_third_are_ignored(extra: bytes) -> None:
    assert parse_pairing_request(REQUEST + extra) == parse_pairing_request(REQUEST)


@pytest.mark.parametrize("garbage", [b"\n", b"\r\n", b" ", b"\x00", b"=", b"!", b"\xff", b"A"])
def test_trailing_garbage_is_refused(garbage: bytes) -> None:
    with pytest.raises(MalformedPairingRequest):
        parse_pairing_request(REQUEST + garbage)


def test_truncated_request_never_yields_other_ids() -> None:
    for end in range(len(REQUEST)):
        try:
            request = parse_pairing_request(REQUEST[:end])
        except MalformedPairingRequest:
            continue
        # Cutting the key on a 4-character boundary leaves valid base64 of a shorter key.
        assert (request.requester_veraid_id, request.target_veraid_id) == (ALICE, BOB)
        assert KEY.startswith(request.requester_id_key)
        assert end > len(f"{ALICE},{BOB},")


MALFORMED_REQUESTS = [
    # Encoding.
    (b"\xff" + REQUEST, "not valid UTF-8", UnicodeDecodeError),
    (REQUEST.replace(b"alice", b"al\xc3ice"), "not valid UTF-8", UnicodeDecodeError),
    # Framing.
    (b"", "1 comma-separated field(s) instead of 3", None),
    (ALICE.encode(), "1 comma-separated field(s) instead of 3", None),
    (f"{ALICE},{BOB}".encode(), "2 comma-separated field(s) instead of 3", None),
    (f"{ALICE};{BOB};{KEY_BASE64}".encode(), "1 comma-separated field(s)", None),
    # Ids.
    (f",{BOB},{KEY_BASE64}".encode(), "Invalid requester VeraId id", InvalidVeraidId),
    (f"{ALICE},,{KEY_BASE64}".encode(), "Invalid target VeraId id", InvalidVeraidId),
    (f"{ALICE},tickety.boo,{KEY_BASE64}".encode(), "Invalid target VeraId id", InvalidVeraidId),
    (f"{ALICE},bob@tickety.boo.,{KEY_BASE64}".encode(), "Invalid target", InvalidVeraidId),
    (f"{ALICE} ,{BOB},{KEY_BASE64}".encode(), "Invalid requester", InvalidVeraidId),
    (f"{ALICE},{BOB} ,{KEY_BASE64}".encode(), "Invalid target", InvalidVeraidId),
    (f"{ALICE},bob\n@tickety.boo,{KEY_BASE64}".encode(), "Invalid target", InvalidVeraidId),
    (f"{ALICE},{ALICE},{KEY_BASE64}".encode(), "the same VeraId id", None),
    # Key.
    (f"{ALICE},{BOB},".encode(), "key is empty", None),
    (f"{ALICE},{BOB},-_-_-_A=".encode(), "not valid base64", binascii.Error),
    (f"{ALICE},{BOB},+/+/+/A".encode(), "not valid base64", binascii.Error),
    (f"{ALICE},{BOB},+/+/+/A==".encode(), "not valid base64", binascii.Error),
    (f"{ALICE},{BOB},+/+/ +/A=".encode(), "not valid base64", binascii.Error),
    (f"{ALICE},{BOB},+/+/\n+/A=".encode(), "not valid base64", binascii.Error),
    (f"{ALICE},{BOB}, {KEY_BASE64}".encode(), "not valid base64", binascii.Error),
    (f"{ALICE},{BOB},{KEY_BASE64}é".encode(), "not valid base64", UnicodeEncodeError),
    (f"{ALICE},{BOB},====".encode(), "not valid base64", binascii.Error),
    # Non-zero unused bits: "+/+/+/B=" decodes to the same bytes as "+/+/+/A=".
    (f"{ALICE},{BOB},+/+/+/B=".encode(), "not canonical base64", None),
]


@pytest.mark.parametrize(("content", "reason", "cause_type"), MALFORMED_REQUESTS)
def test_malformed_request(
    content: bytes, reason: str, cause_type: type[BaseException] | None
) -> None:
    with pytest.raises(MalformedPairingRequest) as exc_info:
        parse_pairing_request(content)

    assert reason in str(exc_info.value)
    if cause_type is None:
        assert exc_info.value.__cause__ is None
    else:
        assert isinstance(exc_info.value.__cause__, cause_type)


def test_malformed_request_is_a_letro_protocol_error() -> None:
    with pytest.raises(LetroProtocolError):
        parse_pairing_request(b"")


@pytest.mark.parametrize(
    "content",
    [
        b"\xff" * 100_000,
        b"x" * 100_000,
        f"{'x' * 100_000}\t@a.com,{BOB},{KEY_BASE64}".encode(),
        f"{ALICE},{BOB},{'!' * 100_000}".encode(),
    ],
)
def test_error_message_quotes_a_bounded_excerpt(content: bytes) -> None:
    with pytest.raises(MalformedPairingRequest) as exc_info:
        parse_pairing_request(content)

    assert len(str(exc_info.value)) < 300


@pytest.mark.parametrize(
    ("requester", "target", "key", "reason"),
    [
        ("tickety.boo", BOB, KEY, "Invalid requester VeraId id"),
        (ALICE, "bob", KEY, "Invalid target VeraId id"),
        (ALICE, ALICE, KEY, "the same VeraId id"),
        (ALICE, BOB, b"", "key is empty"),
    ],
)
def test_request_constructor_validates(
    requester: str, target: str, key: bytes, reason: str
) -> None:
    with pytest.raises(MalformedPairingRequest, match=reason):
        LegacyPairingRequest(
            requester_veraid_id=requester, target_veraid_id=target, requester_id_key=key
        )


def test_request_is_immutable() -> None:
    request = parse_pairing_request(REQUEST)

    with pytest.raises(dataclasses.FrozenInstanceError):
        request.target_veraid_id = "mallory@example.com"  # type: ignore[misc]


def test_serialise_match() -> None:
    content = serialise_pairing_match(
        own_veraid_id=ALICE,
        contact_veraid_id=BOB,
        contact_endpoint_id=BOB_ENDPOINT_ID,
        contact_id_key=KEY,
    )

    assert content == (
        b"alice@applepie.rocks,bob@tickety.boo,"
        b"055be8417a3d1dad19799e66596ac085fd5c68f0b1dbd9bfea5e39c072dd3cf88,+/+/+/A="
    )


def test_serialise_match_as_the_android_client_parses_it() -> None:
    # The client splits on "," and takes its own id, the contact's id, the contact's
    # endpoint id and the contact's base64 key, in that order.
    content = serialise_pairing_match(
        own_veraid_id="maría@はじめよう.みんな",
        contact_veraid_id=BOB,
        contact_endpoint_id=BOB_ENDPOINT_ID,
        contact_id_key=bytes(range(256)),
    )

    own, contact, endpoint_id, key_base64 = content.decode("utf-8").split(",")
    assert (own, contact, endpoint_id) == ("maría@はじめよう.みんな", BOB, BOB_ENDPOINT_ID)
    assert base64.b64decode(key_base64, validate=True) == bytes(range(256))


@pytest.mark.parametrize(
    ("own", "contact", "endpoint_id", "key"),
    [
        ("", BOB, BOB_ENDPOINT_ID, KEY),
        (ALICE, "", BOB_ENDPOINT_ID, KEY),
        (ALICE, BOB, "", KEY),
        (ALICE, BOB, BOB_ENDPOINT_ID, b""),
        ("ali,ce@applepie.rocks", BOB, BOB_ENDPOINT_ID, KEY),
        (ALICE, "b,ob@tickety.boo", BOB_ENDPOINT_ID, KEY),
        (ALICE, BOB, "0a,b", KEY),
    ],
)
def test_serialise_match_refuses_fields_that_break_framing(
    own: str, contact: str, endpoint_id: str, key: bytes
) -> None:
    with pytest.raises(ValueError, match="must"):
        serialise_pairing_match(
            own_veraid_id=own,
            contact_veraid_id=contact,
            contact_endpoint_id=endpoint_id,
            contact_id_key=key,
        )


_ASCII_LABELS = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,20}[a-z0-9])?", fullmatch=True).filter(
    lambda label: "--" not in label
)
_USER_NAMES = st.text(
    st.characters(codec="utf-8", exclude_characters="@\t\r\n,"), min_size=1, max_size=20
)


@st.composite
def _veraid_ids(draw: st.DrawFn) -> str:
    labels = draw(st.lists(_ASCII_LABELS, min_size=1, max_size=3))
    tld = draw(st.from_regex(r"[a-z]{2,6}", fullmatch=True))
    return f"{draw(_USER_NAMES)}@{'.'.join([*labels, tld])}"


@settings(deadline=None)
@given(_veraid_ids(), _veraid_ids(), st.binary(min_size=1, max_size=600))
def test_request_round_trip(requester: str, target: str, key: bytes) -> None:
    content = f"{requester},{target},{base64.b64encode(key).decode()}".encode()

    if requester == target:
        with pytest.raises(MalformedPairingRequest):
            parse_pairing_request(content)
    else:
        assert parse_pairing_request(content) == LegacyPairingRequest(requester, target, key)


@settings(deadline=None)
@given(_veraid_ids(), _veraid_ids(), st.text(min_size=1), st.binary(min_size=1, max_size=600))
def test_match_round_trip(own: str, contact: str, endpoint_id: str, key: bytes) -> None:
    endpoint_id = endpoint_id.replace(",", "")
    if not endpoint_id:
        endpoint_id = BOB_ENDPOINT_ID

    content = serialise_pairing_match(
        own_veraid_id=own,
        contact_veraid_id=contact,
        contact_endpoint_id=endpoint_id,
        contact_id_key=key,
    )

    fields = content.decode("utf-8").split(",")
    assert fields[:3] == [own, contact, endpoint_id]
    assert base64.b64decode(fields[3], validate=True) == key
    assert len(fields) == 4


# Fields that are valid, nearly valid or plainly wrong, joined with commas, so that the
# fuzzing below reaches every check and not only the UTF-8 one.
_FIELDS = st.one_of(
    st.sampled_from([ALICE, BOB, KEY_BASE64, "", "example.com", "a@b", "AAAA", "AB==", "="]),
    _veraid_ids(),
    st.binary(max_size=40).map(lambda data: base64.b64encode(data).decode()),
    st.text(max_size=20),
)
_CSV_LIKE = st.lists(_FIELDS, max_size=5).map(lambda fields: ",".join(fields).encode())


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.binary(max_size=200), _CSV_LIKE))
def test_only_malformed_pairing_request_escapes(content: bytes) -> None:
    try:
        request = parse_pairing_request(content)
    except MalformedPairingRequest:
        return
    assert isinstance(request, LegacyPairingRequest)
    assert content.startswith(f"{request.requester_veraid_id},{request.target_veraid_id},".encode())
