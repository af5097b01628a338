"""``letro.connection_params``: which requested domain names are looked up, and as what."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from letro.connection_params import (
    MAX_REQUESTED_NAME_BYTES,
    ConnectionParamsRequest,
    parse_connection_params_request,
)
from letro.errors import LetroProtocolError, MalformedConnectionParamsRequest

NAME_OF_128_BYTES = "a" * 60 + "." + "b" * 63 + ".com"

ACCEPTED = {
    "plain": ("example.com", "example.com"),
    "upper case": ("EXAMPLE.COM", "example.com"),
    "trailing dot": ("example.com.", "example.com"),
    "many labels": ("pdc.eu.letro.app", "pdc.eu.letro.app"),
    "IDN": ("はじめよう.みんな", "xn--p8j9a0d9c9a.xn--q9jyb4c"),
    "IDN with an ideographic full stop": ("はじめよう。みんな", "xn--p8j9a0d9c9a.xn--q9jyb4c"),
    "IDN with Latin letters": ("bücher.de", "xn--bcher-kva.de"),
    "A-label": ("xn--bcher-kva.de", "xn--bcher-kva.de"),
    "full-width letters": ("\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com", "example.com"),
    "digits below the TLD": ("123.example", "123.example"),
    "hyphen inside": ("my-server.example", "my-server.example"),
    "exactly 128 bytes": (NAME_OF_128_BYTES, NAME_OF_128_BYTES),
}


@pytest.mark.parametrize(("name", "ascii_name"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_names(name: str, ascii_name: str) -> None:
    assert parse_connection_params_request(name.encode()) == ConnectionParamsRequest(
        domain_name=name, ascii_domain_name=ascii_name
    )


REFUSED = {
    "single label": (b"malformed", "single label"),
    "single IDN label": ("みんな".encode(), "single label"),
    "129 bytes": (("a" + NAME_OF_128_BYTES).encode(), "too long"),
    "long IDN (bytes, not characters, count)": (("ü" * 60 + ".de").encode(), "too long"),
    "not UTF-8": (b"ex\xffample.com", "not valid UTF-8"),
    "empty": (b"", "malformed"),
    "just a dot": (b".", "malformed"),
    "underscore": (b"a_b.com", "malformed"),
    "SRV-style name": (b"_awala-pdc._tcp.example.com", "malformed"),
    "wildcard": (b"*.example.com", "malformed"),
    "leading hyphen": (b"-a.com", "malformed"),
    "trailing hyphen": (b"a-.com", "malformed"),
    "hyphens in 3rd and 4th place": (b"ab--c.com", "malformed"),
    "bogus A-label": (b"xn--a.com", "malformed"),
    "empty label": (b"a..com", "malformed"),
    "two trailing dots": (b"example.com..", "malformed"),
    "space": (b"exa mple.com", "malformed"),
    "surrounding whitespace": (b" example.com\n", "malformed"),
    "at sign": (b"alice@example.com", "malformed"),
    "label of 64 characters": (b"a" * 64 + b".com", "malformed"),
    "IPv4 address": (b"1.2.3.4", "all-numeric"),
    "numeric TLD": (b"foo.123", "all-numeric"),
    "URL": (b"https://example.com/", "malformed"),
    "zero-width joiner": ("\u200d.com".encode(), "malformed"),
    "NUL": (b"example.com\x00", "malformed"),
}


@pytest.mark.parametrize(("content", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_names(content: bytes, reason: str) -> None:
    with pytest.raises(MalformedConnectionParamsRequest, match=reason):
        parse_connection_params_request(content)


def test_the_length_limit_is_the_original_servers() -> None:
    assert MAX_REQUESTED_NAME_BYTES == 128
    assert len(NAME_OF_128_BYTES.encode()) == 128


def test_the_error_belongs_to_the_package_hierarchy() -> None:
    assert issubclass(MalformedConnectionParamsRequest, LetroProtocolError)


_NAME_LIKE = st.lists(
    st.text(alphabet=st.sampled_from("abz09-_.ü。みXN*@ \u200d"), max_size=20), max_size=5
).map(".".join)


@settings(max_examples=500)
@given(st.one_of(st.binary(max_size=140), _NAME_LIKE.map(str.encode)))
def test_fuzz_only_our_error_escapes_and_accepted_names_are_ldh(content: bytes) -> None:
    try:
        request = parse_connection_params_request(content)
    except MalformedConnectionParamsRequest:
        return
    labels = request.ascii_domain_name.split(".")
    assert len(labels) >= 2
    for label in labels:
        assert 0 < len(label) <= 63
        assert set(label) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
