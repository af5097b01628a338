"""``awala.target_addresses``: which hosts and addresses a parameters fetch may connect to."""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from awala.errors import InvalidTargetHost
from awala.target_addresses import (
    INTERNAL_USES,
    AddressUse,
    address_refusal,
    parse_target_host,
    screen_addresses,
)

# Address -> (what it is, the range named in the refusal).
REFUSED: dict[str, tuple[AddressUse, str]] = {
    # IPv4 loopback, private, shared and link-local: internal.
    "127.0.0.1": (AddressUse.LOOPBACK, "127.0.0.0/8"),
    "127.255.255.254": (AddressUse.LOOPBACK, "127.0.0.0/8"),
    "10.0.0.1": (AddressUse.PRIVATE, "10.0.0.0/8"),
    "10.255.255.255": (AddressUse.PRIVATE, "10.0.0.0/8"),
    "172.16.0.1": (AddressUse.PRIVATE, "172.16.0.0/12"),
    "172.31.255.255": (AddressUse.PRIVATE, "172.16.0.0/12"),
    "192.168.0.1": (AddressUse.PRIVATE, "192.168.0.0/16"),
    "192.168.255.255": (AddressUse.PRIVATE, "192.168.0.0/16"),
    "100.64.0.1": (AddressUse.SHARED, "100.64.0.0/10"),
    "100.127.255.255": (AddressUse.SHARED, "100.64.0.0/10"),
    "169.254.0.1": (AddressUse.LINK_LOCAL, "169.254.0.0/16"),
    "169.254.255.255": (AddressUse.LINK_LOCAL, "169.254.0.0/16"),
    # Cloud metadata services, including one outside any special range.
    "169.254.169.254": (AddressUse.CLOUD_METADATA, "169.254.169.254"),
    "169.254.170.2": (AddressUse.CLOUD_METADATA, "169.254.170.2"),
    "169.254.170.23": (AddressUse.CLOUD_METADATA, "169.254.170.23"),
    "100.100.100.200": (AddressUse.CLOUD_METADATA, "100.100.100.200"),
    "192.0.0.192": (AddressUse.CLOUD_METADATA, "192.0.0.192"),
    "168.63.129.16": (AddressUse.CLOUD_METADATA, "168.63.129.16"),
    "fd00:ec2::254": (AddressUse.CLOUD_METADATA, "fd00:ec2::254"),
    "fd00:ec2::23": (AddressUse.CLOUD_METADATA, "fd00:ec2::23"),
    # IPv4: never a server's address.
    "0.0.0.0": (AddressUse.UNSPECIFIED, "0.0.0.0/32"),
    "0.1.2.3": (AddressUse.RESERVED, "0.0.0.0/8"),
    "255.255.255.255": (AddressUse.BROADCAST, "255.255.255.255/32"),
    "224.0.0.1": (AddressUse.MULTICAST, "224.0.0.0/4"),
    "239.255.255.250": (AddressUse.MULTICAST, "224.0.0.0/4"),
    "240.0.0.1": (AddressUse.RESERVED, "240.0.0.0/4"),
    "255.255.255.254": (AddressUse.RESERVED, "240.0.0.0/4"),
    "192.0.0.8": (AddressUse.RESERVED, "192.0.0.0/24"),
    "192.88.99.1": (AddressUse.RESERVED, "192.88.99.0/24"),
    "192.0.2.1": (AddressUse.DOCUMENTATION, "192.0.2.0/24"),
    "198.51.100.7": (AddressUse.DOCUMENTATION, "198.51.100.0/24"),
    "203.0.113.255": (AddressUse.DOCUMENTATION, "203.0.113.0/24"),
    "198.18.0.1": (AddressUse.BENCHMARKING, "198.18.0.0/15"),
    "198.19.255.255": (AddressUse.BENCHMARKING, "198.18.0.0/15"),
    # IPv6.
    "::1": (AddressUse.LOOPBACK, "::1/128"),
    "::": (AddressUse.UNSPECIFIED, "::/128"),
    "fc00::1": (AddressUse.UNIQUE_LOCAL, "fc00::/7"),
    "fd12:3456:789a::1": (AddressUse.UNIQUE_LOCAL, "fc00::/7"),
    "fe80::1": (AddressUse.LINK_LOCAL, "fe80::/10"),
    "febf:ffff::1": (AddressUse.LINK_LOCAL, "fe80::/10"),
    "fec0::1": (AddressUse.RESERVED, "fec0::/10"),
    "ff02::1": (AddressUse.MULTICAST, "ff00::/8"),
    "ff05::1:3": (AddressUse.MULTICAST, "ff00::/8"),
    "100::1": (AddressUse.RESERVED, "100::/64"),
    "2001:db8::1": (AddressUse.DOCUMENTATION, "2001:db8::/32"),
    "3fff::1": (AddressUse.DOCUMENTATION, "3fff::/20"),
    "2001::1": (AddressUse.RESERVED, "2001::/23"),  # Teredo
    "2001:2::1": (AddressUse.RESERVED, "2001::/23"),  # benchmarking
    "2001:20::1": (AddressUse.RESERVED, "2001::/23"),  # ORCHIDv2
    "64:ff9b:1::a00:1": (AddressUse.RESERVED, "64:ff9b:1::/48"),
    "5f00::1": (AddressUse.RESERVED, "outside 2000::/3"),  # SRv6 SIDs
    "4000::1": (AddressUse.RESERVED, "outside 2000::/3"),
    "::127.0.0.1": (AddressUse.RESERVED, "::/96"),  # IPv4-compatible, deprecated
    "::8.8.8.8": (AddressUse.RESERVED, "::/96"),
    # IPv6 addresses embedding a non-public IPv4 address: judged by that address.
    "::ffff:127.0.0.1": (AddressUse.LOOPBACK, "127.0.0.0/8"),
    "::ffff:10.1.2.3": (AddressUse.PRIVATE, "10.0.0.0/8"),
    "::ffff:169.254.169.254": (AddressUse.CLOUD_METADATA, "169.254.169.254"),
    "::ffff:0.0.0.0": (AddressUse.UNSPECIFIED, "0.0.0.0/32"),
    "64:ff9b::7f00:1": (AddressUse.LOOPBACK, "127.0.0.0/8"),
    "64:ff9b::192.168.1.1": (AddressUse.PRIVATE, "192.168.0.0/16"),
    "64:ff9b::a9fe:a9fe": (AddressUse.CLOUD_METADATA, "169.254.169.254"),
    "2002:7f00:1::": (AddressUse.LOOPBACK, "127.0.0.0/8"),
    "2002:a00:1::1": (AddressUse.PRIVATE, "10.0.0.0/8"),
    "2002:a9fe:a9fe::": (AddressUse.CLOUD_METADATA, "169.254.169.254"),
}

PUBLIC = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.215.14",
    "9.255.255.255",  # just below 10/8
    "11.0.0.0",  # just above
    "100.63.255.255",  # just below 100.64/10
    "100.128.0.0",  # just above
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",  # last before multicast
    "168.63.129.17",  # next to Azure's WireServer
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2001:200::1",  # just past 2001::/23
    "2a00:1450:4009:81f::200e",
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "::ffff:8.8.8.8",  # IPv4-mapped 8.8.8.8
]


@pytest.mark.parametrize(("address", "expected"), REFUSED.items(), ids=REFUSED.keys())
def test_non_public_addresses_are_refused(address: str, expected: tuple[AddressUse, str]) -> None:
    refusal = address_refusal(ip_address(address))
    assert refusal is not None
    assert (refusal.use, refusal.network) == expected
    assert refusal.address == ip_address(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ip_address(address)) is None
    assert address_refusal(ip_address(address), allow_private=True) is None


INTERNAL = [address for address, (use, _) in REFUSED.items() if use in INTERNAL_USES]
NEVER = [address for address, (use, _) in REFUSED.items() if use not in INTERNAL_USES]


@pytest.mark.parametrize("address", INTERNAL)
def test_allowing_private_addresses_allows_internal_ones(address: str) -> None:
    assert address_refusal(ip_address(address), allow_private=True) is None


@pytest.mark.parametrize("address", NEVER)
def test_allowing_private_addresses_still_refuses_metadata_and_special_ranges(
    address: str,
) -> None:
    refusal = address_refusal(ip_address(address), allow_private=True)
    assert refusal is not None
    assert refusal.use is REFUSED[address][0]


def test_every_kind_of_refusal_is_covered() -> None:
    assert {use for use, _ in REFUSED.values()} == set(AddressUse)
    assert {"127.0.0.1", "::1", "::ffff:127.0.0.1", "169.254.169.254"} <= set(INTERNAL + NEVER)


def test_refusal_says_what_and_why() -> None:
    assert str(address_refusal(ip_address("10.0.0.1"))) == "10.0.0.1 is private (10.0.0.0/8)"
    assert str(address_refusal(ip_address("::ffff:127.0.0.1"))) == (
        "::ffff:7f00:1 (IPv4-mapped 127.0.0.1) is loopback (127.0.0.0/8)"
    )
    assert str(address_refusal(ip_address("fd00:ec2::254"))) == (
        "fd00:ec2::254 is a cloud metadata service (fd00:ec2::254)"
    )


def test_a_zone_index_does_not_hide_an_address() -> None:
    scoped = IPv6Address("fd00:ec2::254%eth0")
    refusal = address_refusal(scoped, allow_private=True)
    assert refusal is not None
    assert refusal.use is AddressUse.CLOUD_METADATA


@given(st.ip_addresses())
def test_any_address_gets_an_answer(address: IPv4Address | IPv6Address) -> None:
    refusal = address_refusal(address)
    assert refusal is None or refusal.use in set(AddressUse)


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_and_its_mapped_form_get_the_same_answer(address: IPv4Address) -> None:
    mapped = IPv6Address(f"::ffff:{address}")
    direct, via_mapping = address_refusal(address), address_refusal(mapped)
    assert (direct is None) == (via_mapping is None)
    if direct is not None and via_mapping is not None:
        assert (direct.use, direct.network) == (via_mapping.use, via_mapping.network)


# --- Screening a host's addresses -----------------------------------------------------------


def test_screening_keeps_public_addresses_ipv4_first() -> None:
    addresses = [ip_address(a) for a in ("2606:4700::1", "10.0.0.1", "1.1.1.1", "::1", "8.8.8.8")]
    screened = screen_addresses([*addresses, ip_address("1.1.1.1")])
    assert screened.allowed == (
        IPv4Address("1.1.1.1"),
        IPv4Address("8.8.8.8"),
        IPv6Address("2606:4700::1"),
    )
    assert [str(refusal.address) for refusal in screened.refused] == ["10.0.0.1", "::1"]


def test_screening_can_leave_nothing() -> None:
    screened = screen_addresses([IPv4Address("127.0.0.1"), IPv6Address("::1")])
    assert screened.allowed == ()
    assert [refusal.use for refusal in screened.refused] == [AddressUse.LOOPBACK] * 2


def test_screening_with_private_addresses_allowed() -> None:
    screened = screen_addresses(
        [IPv6Address("::1"), IPv4Address("127.0.0.1"), IPv4Address("169.254.169.254")],
        allow_private=True,
    )
    assert screened.allowed == (IPv4Address("127.0.0.1"), IPv6Address("::1"))
    assert [refusal.use for refusal in screened.refused] == [AddressUse.CLOUD_METADATA]


# --- SRV targets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", IPv4Address("127.0.0.1")),
        ("169.254.169.254", IPv4Address("169.254.169.254")),
        ("::ffff:127.0.0.1", IPv6Address("::ffff:127.0.0.1")),
        ("::1", IPv6Address("::1")),
        ("localhost", "localhost"),
        ("PDC.Example.COM", "pdc.example.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("_srv-host.example", "_srv-host.example"),
        ("metadata.google.internal", "metadata.google.internal"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
        ("1.2.3.example", "1.2.3.example"),
    ],
)
def test_targets_are_addresses_or_host_names(
    host: str, expected: IPv4Address | IPv6Address | str
) -> None:
    assert parse_target_host(host) == expected


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.1", "all-numeric top-level label"),  # inet_aton would read 127.0.0.1
        ("2130706433", "all-numeric top-level label"),
        ("0177.0.0.1", "all-numeric top-level label"),
        ("fe80::1%eth0", "zone index"),
        ("evil.example/x?", "not a host name"),
        ("a\\@b.example", "not a host name"),
        ("a b.example", "not a host name"),
        ("-a.example", "not a host name"),
        ("a-.example", "not a host name"),
        ("a..example", "not a host name"),
        ("", "not a host name"),
        ("a" * 64 + ".example", "not a host name"),
        (("a" * 62 + ".") * 4 + "example", "not a host name"),  # over 253 characters
        ("a\\000b.example", "not a host name"),
    ],
)
def test_other_targets_are_refused(host: str, reason: str) -> None:
    with pytest.raises(InvalidTargetHost, match=reason):
        parse_target_host(host)


@given(st.text(max_size=80))
def test_only_our_error_escapes_target_parsing(host: str) -> None:
    with contextlib.suppress(InvalidTargetHost):
        parsed = parse_target_host(host)
        assert isinstance(parsed, IPv4Address | IPv6Address) or parsed == host.lower()
