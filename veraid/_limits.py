"""How much work verifying one DNSSEC chain may cost: every limit of the library, in one place.

Anyone can send a bundle whose chain passes the certificate and CMS checks (a self-signed
organisation), so what the chain costs to verify is the attacker's choice unless it is
bounded. Each limit is a few times what a real chain needs (see ``veraid/README.md``); going
over one raises :class:`veraid.ChainLimitError` before the work it guards is done.

A real chain, as ``@relaycorp/veraid`` retrieves it for ``_veraid.<domain>/TXT``, holds one
response per query: DNSKEY for the root, every ancestor of the TXT name and the name
itself, DS for each of them but the root, then the TXT response: 8 for ``example.com``,
14 for a five-label domain. Real DNSKEY RRsets hold 2-6 keys, real RRsets 1-3 RRSIGs.
"""

from __future__ import annotations

from typing import Final

MAX_CHAIN_RESPONSES: Final = 16
"""Responses in a chain: 2 x 6 labels + 4 (reading each question costs ~15 µs)."""

MAX_RESPONSE_BYTES: Final = 8192
"""Bytes of one response: a DNSKEY response with four RSA-4096 keys and two RRSIGs is ~3 KiB."""

MAX_CHAIN_BYTES: Final = 32 * 1024
"""Bytes of all the responses together (real chains: 5-15 KiB)."""

MAX_ANSWER_RECORDS: Final = 16
"""Records in the answer section of one response (from its header, before any is parsed)."""

MAX_CHAIN_RECORDS: Final = 48
"""Answer records of all the responses validation reads, from their headers, before any is
parsed: dnspython takes about 30 µs to parse one. ``example.com`` needs about 18 (25 while
its zones roll keys), a five-label domain whose zones are all signed about 37."""

MAX_RRSET_RECORDS: Final = 12
"""Records of the RRset a response answers with (DNSKEY, DS or TXT; real: 1-6)."""

MAX_RRSIGS_PER_RRSET: Final = 4
"""RRSIGs over one RRset (real: 1-3, e.g. KSK and ZSK during an algorithm roll-over)."""

MAX_KEYS_PER_RRSIG: Final = 2
"""DNSKEYs one RRSIG may be tried with: keys of the same algorithm and key tag. A real zone
almost never has two (the tag is a 16-bit checksum), but it is cheap to grind keys whose tags
collide, each costing a failed signature check."""

MAX_RSA_MODULUS_BITS: Final = 4096
"""The largest RSA DNSKEY (RFC 3110 and RFC 5702 allow at most 4096 bits)."""

MAX_RSA_EXPONENT_BITS: Final = 33
"""The largest RSA public exponent of a DNSKEY: real keys use 65537 (17 bits) or BIND's
"large exponent" 2^32 + 1; a long exponent makes a verification as slow as a signature."""

MAX_SIGNATURE_COST: Final = 96
"""Signature checks one chain may need, in RSA-2048 verifications (about 25 µs each): the
sum over every RRSIG of the cost of each DNSKEY it could be checked with, counted before any
is checked. A real chain of 8 RRsets with 2 RRSIGs each costs 16 with RSA-2048 keys, 64 with
RSA-4096 or P-256 keys; a P-384 zone costs 32 per RRSIG."""

SIGNATURE_COSTS: Final[dict[int, int]] = {
    # DNSSEC algorithm number -> cost of one check, in RSA-2048 verifications, as measured
    # with the cryptography package (OpenSSL 3) on one core, rounded up.
    13: 4,  # ECDSAP256SHA256
    14: 32,  # ECDSAP384SHA384
    15: 7,  # ED25519
    16: 13,  # ED448
}
"""The cost of each non-RSA algorithm this library verifies. RSA (5, 7, 8, 10) costs
``(modulus bits / 2048)² x (exponent bits / 17)``, rounded up: 1 for RSA-2048, 4 for RSA-4096."""

RSA_ALGORITHMS: Final = frozenset({5, 7, 8, 10})  # RSASHA1, RSASHA1-NSEC3-SHA1, RSASHA256, 512


# --- Bundles ----------------------------------------------------------------------------------

MAX_DER_ELEMENTS: Final = 256
"""DER elements of a bundle outside its certificates and DNS messages, each a few µs of
Python to check and decode (a member SignatureBundle has about 100)."""

MAX_SIGNED_ATTRIBUTES: Final = 16
"""Signed attributes of the CMS signature (VeraId signs 3 or 4)."""

MAX_CERTIFICATE_BYTES: Final = 4096
"""Bytes of one certificate (VeraId's: about 1 KiB, 1.4 KiB with an RSA-4096 key)."""

MAX_SIGNED_DATA_CERTIFICATES: Final = 8
"""Certificates in the CMS SignedData, each loaded to find the signer's (VeraId sends 1)."""
