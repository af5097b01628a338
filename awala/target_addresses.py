"""Where a PoHTTP server may be reached: public unicast addresses only, sans I/O.

An Internet endpoint's owner writes its SRV record, so the record can name any host:
``127.0.0.1``, a cloud's metadata service, or a name resolving to an address inside the
network our worker runs in. Fetching its connection parameters from there would be a
server-side request forgery. This module decides which hosts and addresses a fetch may
use; the activity resolves names through our own resolver, asks this module, and
connects to the very address that was approved (so a second DNS answer cannot rebind).

The ranges follow the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890)
plus the addresses of the cloud metadata services, several of which look public. IPv6
outside 2000::/3 is not global unicast today and is refused as a whole. Addresses that
embed an IPv4 address (IPv4-mapped, the NAT64 well-known prefix, 6to4) are judged by the
address they embed, since that is where a connection to them ends up. NAT64 prefixes
chosen by a network operator (RFC 6052 network-specific prefixes) cannot be recognised
from the address alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Final

from awala.errors import InvalidTargetHost

IPAddress = IPv4Address | IPv6Address


class AddressUse(StrEnum):
    """Why an address is not a public one."""

    LOOPBACK = "loopback"
    PRIVATE = "private"
    SHARED = "shared (carrier-grade NAT)"
    LINK_LOCAL = "link-local"
    UNIQUE_LOCAL = "unique local"
    CLOUD_METADATA = "a cloud metadata service"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    BROADCAST = "broadcast"
    DOCUMENTATION = "documentation"
    BENCHMARKING = "benchmarking"
    RESERVED = "reserved"


# Where a local deployment's own servers live; allowed when private targets are (local
# development, tests). The metadata services, multicast, reserved ranges and the like are
# never a PoHTTP server, so they stay refused whatever the setting.
INTERNAL_USES: Final = frozenset(
    {
        AddressUse.LOOPBACK,
        AddressUse.PRIVATE,
        AddressUse.SHARED,
        AddressUse.LINK_LOCAL,
        AddressUse.UNIQUE_LOCAL,
    }
)

_CLOUD_METADATA: Final = frozenset(
    ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, Google Cloud, Azure, Oracle, DigitalOcean, OpenStack...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS Pod Identity Agent
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud Infrastructure (classic)
        "168.63.129.16",  # Azure WireServer: an address that looks public
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity Agent over IPv6
    )
)

# First match wins: narrower ranges come before the ranges that contain them.
_IPV4_RANGES: Final = tuple(
    (IPv4Network(network), use)
    for network, use in (
        ("0.0.0.0/32", AddressUse.UNSPECIFIED),
        ("0.0.0.0/8", AddressUse.RESERVED),  # "this network" (RFC 791)
        ("10.0.0.0/8", AddressUse.PRIVATE),  # RFC 1918
        ("100.64.0.0/10", AddressUse.SHARED),  # RFC 6598
        ("127.0.0.0/8", AddressUse.LOOPBACK),
        ("169.254.0.0/16", AddressUse.LINK_LOCAL),  # RFC 3927
        ("172.16.0.0/12", AddressUse.PRIVATE),
        ("192.0.0.0/24", AddressUse.RESERVED),  # IETF protocol assignments (RFC 6890)
        ("192.0.2.0/24", AddressUse.DOCUMENTATION),  # TEST-NET-1 (RFC 5737)
        ("192.88.99.0/24", AddressUse.RESERVED),  # former 6to4 relay anycast (RFC 7526)
        ("192.168.0.0/16", AddressUse.PRIVATE),
        ("198.18.0.0/15", AddressUse.BENCHMARKING),  # RFC 2544
        ("198.51.100.0/24", AddressUse.DOCUMENTATION),  # TEST-NET-2
        ("203.0.113.0/24", AddressUse.DOCUMENTATION),  # TEST-NET-3
        ("224.0.0.0/4", AddressUse.MULTICAST),
        ("255.255.255.255/32", AddressUse.BROADCAST),
        ("240.0.0.0/4", AddressUse.RESERVED),  # RFC 1112
    )
)

_IPV6_RANGES: Final = tuple(
    (IPv6Network(network), use)
    for network, use in (
        ("::/128", AddressUse.UNSPECIFIED),
        ("::1/128", AddressUse.LOOPBACK),
        ("::/96", AddressUse.RESERVED),  # deprecated IPv4-compatible addresses (RFC 4291)
        ("64:ff9b:1::/48", AddressUse.RESERVED),  # local-use IPv4/IPv6 translation (RFC 8215)
        ("100::/64", AddressUse.RESERVED),  # discard-only (RFC 6666)
        # IETF protocol assignments (Teredo, benchmarking, ORCHID, anycast services):
        # none is a web server's address.
        ("2001::/23", AddressUse.RESERVED),
        ("2001:db8::/32", AddressUse.DOCUMENTATION),  # RFC 3849
        ("3fff::/20", AddressUse.DOCUMENTATION),  # RFC 9637
        ("fc00::/7", AddressUse.UNIQUE_LOCAL),  # RFC 4193
        ("fe80::/10", AddressUse.LINK_LOCAL),
        ("fec0::/10", AddressUse.RESERVED),  # deprecated site-local (RFC 3879)
        ("ff00::/8", AddressUse.MULTICAST),
    )
)
_IPV6_GLOBAL_UNICAST: Final = IPv6Network("2000::/3")
_NAT64_WELL_KNOWN: Final = IPv6Network("64:ff9b::/96")  # RFC 6052


@dataclass(frozen=True, slots=True)
class AddressRefusal:
    """Why ``address`` may not be connected to.

    Attributes:
        address: The address refused.
        use: What the range it is in is for.
        network: That range, e.g. ``127.0.0.0/8``, or the address itself when listed alone.
        embedding: How an IPv6 address embeds the IPv4 address judged, if it does.
    """

    address: IPAddress
    use: AddressUse
    network: str
    embedding: str | None = None

    def __str__(self) -> str:
        via = f" ({self.embedding})" if self.embedding else ""
        return f"{self.address}{via} is {self.use} ({self.network})"


def address_refusal(address: IPAddress, *, allow_private: bool = False) -> AddressRefusal | None:
    """Why a fetch may not connect to ``address``, or None if it may.

    Args:
        address: An IPv4 or IPv6 address, from an A or AAAA record or an IP literal.
        allow_private: Also accept loopback, private, shared, link-local and unique local
            addresses (for local development); the rest stays refused.
    """
    refusal = _classify(address)
    if refusal is None or (allow_private and refusal.use in INTERNAL_USES):
        return None
    return refusal


def _classify(address: IPAddress) -> AddressRefusal | None:
    if isinstance(address, IPv6Address):
        # A zone index does not change where a packet goes: compare the bare address.
        address = IPv6Address(int(address))
    if address in _CLOUD_METADATA:
        return AddressRefusal(address, AddressUse.CLOUD_METADATA, str(address))
    if isinstance(address, IPv4Address):
        return _in_ranges(address, _IPV4_RANGES)
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        kind, ipv4 = embedded
        inner = _classify(ipv4)
        if inner is None:
            return None
        return AddressRefusal(address, inner.use, inner.network, f"{kind} {ipv4}")
    refusal = _in_ranges(address, _IPV6_RANGES)
    if refusal is None and address not in _IPV6_GLOBAL_UNICAST:
        return AddressRefusal(address, AddressUse.RESERVED, "outside 2000::/3")
    return refusal


def _in_ranges(
    address: IPAddress, ranges: Sequence[tuple[IPv4Network | IPv6Network, AddressUse]]
) -> AddressRefusal | None:
    for network, use in ranges:
        if address in network:
            return AddressRefusal(address, use, str(network))
    return None


def _embedded_ipv4(address: IPv6Address) -> tuple[str, IPv4Address] | None:
    """The IPv4 address a connection to ``address`` really reaches, and how it is embedded."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address in _NAT64_WELL_KNOWN:
        return "NAT64", IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    return None


@dataclass(frozen=True, slots=True)
class ScreenedAddresses:
    """The addresses of a host split into those a fetch may use, in order, and the rest."""

    allowed: tuple[IPAddress, ...]
    refused: tuple[AddressRefusal, ...]


def screen_addresses(
    addresses: Iterable[IPAddress], *, allow_private: bool = False
) -> ScreenedAddresses:
    """Keep the addresses a fetch may connect to, IPv4 ones first, without duplicates.

    IPv4 comes first because a host with no IPv6 route usually fails fast, while an
    IPv6 route that silently drops packets would spend the whole fetch timeout.
    """
    allowed: list[IPAddress] = []
    refused: list[AddressRefusal] = []
    for address in dict.fromkeys(addresses):
        refusal = address_refusal(address, allow_private=allow_private)
        if refusal is None:
            allowed.append(address)
        else:
            refused.append(refusal)
    allowed.sort(key=lambda address: address.version)  # stable: DNS order within a family
    return ScreenedAddresses(tuple(allowed), tuple(refused))


# A host name's labels: letters, digits, hyphens (RFC 952/1123), plus the underscore some
# zones use; at most 63 octets each, 253 in all.
_LABEL: Final = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)", re.IGNORECASE)
_MAX_HOST_NAME: Final = 253


def parse_target_host(host: str) -> IPAddress | str:
    """The SRV target ``host`` as an IP address if it is an IP literal, else as a host name.

    ``host`` is a target as printed by the DNS library, without its trailing dot. A name
    is returned lower-cased.

    Raises:
        InvalidTargetHost: if ``host`` is neither an IP literal nor a host name (say it
            has escaped bytes, spaces or ``/``, an IPv6 zone index, or an all-numeric
            top-level label such as ``127.1`` that some parsers read as an address).
    """
    if "%" in host:
        raise InvalidTargetHost(f"SRV target {host!r} has an IPv6 zone index")
    try:
        return ip_address(host)
    except ValueError:
        pass
    labels = host.split(".")
    if len(host) > _MAX_HOST_NAME or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidTargetHost(f"SRV target {host!r} is not a host name")
    if labels[-1].isdigit():
        raise InvalidTargetHost(f"SRV target {host!r} has an all-numeric top-level label")
    return host.lower()
