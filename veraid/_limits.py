"""How much work verifying one bundle may cost: every limit of the library, in one place.

Anyone can make a bundle that passes the certificate and CMS checks (a self-issued
organisation), so what verifying it costs would be the sender's choice unless bounded. Each
limit is a few times what real chains and bundles need (see ``veraid/README.md``, "Limits",
which lists them with the figures) and is checked before the work it guards: going over one
raises ``LimitError``, or ``ChainLimitError`` for the DNSSEC chain.

A real chain, as ``@relaycorp/veraid`` retrieves it for ``_veraid.<domain>/TXT``, holds one
response per query: DNSKEY for the root, each ancestor of the TXT name and the name itself,
DS for each of them but the root, then the TXT response: 8 responses for ``example.com``,
14 for a five-label domain. Real DNSKEY RRsets hold 2-6 keys, real RRsets 1-3 RRSIGs.

The costs quoted are CPU on one core of the development machine (``benchmarks.hostile_input``).
"""

from __future__ import annotations

from typing import Final

# --- The DNSSEC chain -------------------------------------------------------------------------

MAX_CHAIN_RESPONSES: Final = 16
"""Responses in a chain: 2 x 6 labels + 4. Reading each one's question costs ~15 µs; the
depth of the organisation name is capped by this too (each zone needs DS and DNSKEY)."""

MAX_RESPONSE_BYTES: Final = 8192
"""Bytes of one response (real: under 2 KiB; four RSA-4096 keys and two RRSIGs: ~3 KiB)."""

MAX_CHAIN_BYTES: Final = 32 * 1024
"""Bytes of all the responses together (real chains: 5-15 KiB)."""

MAX_ANSWER_RECORDS: Final = 16
"""Records in the answer section of one response, from its header, before any is parsed."""

MAX_CHAIN_RECORDS: Final = 48
"""Answer records of all the responses validation reads, from their headers, before any is
parsed: dnspython takes ~30 µs to parse one. ``example.com`` needs about 18 (25 while its
zones roll keys), a five-label domain whose zones are all signed about 37."""

MAX_RRSET_RECORDS: Final = 12
"""Records of the RRset a response answers with (DNSKEY, DS or TXT; real: 1-6)."""

MAX_RRSIGS_PER_RRSET: Final = 4
"""RRSIGs over one RRset (real: 1-3, e.g. KSK and ZSK during an algorithm roll-over)."""

MAX_KEYS_PER_RRSIG: Final = 2
"""DNSKEYs one RRSIG may be tried with: those of its algorithm and key tag. A real zone
almost never has two (the tag is a 16-bit checksum), but colliding keys are cheap to grind
and each costs a failed signature check."""

MAX_RSA_MODULUS_BITS: Final = 4096
"""The largest RSA DNSKEY (RFC 3110 and RFC 5702 allow at most 4096 bits)."""

MAX_RSA_EXPONENT_BITS: Final = 33
"""The longest RSA public exponent, of a DNSKEY or a certificate key: real keys use 65537
(17 bits) or BIND's "large exponent" 2^32 + 1. A 3072-bit exponent makes each verification
as slow as a signature (~8 ms)."""

MAX_SIGNATURE_COST: Final = 96
"""The signature checks one chain may need, in RSA-2048 verifications (~25 µs each): the
sum over every RRSIG of the cost of each DNSKEY it could be checked with, counted before any
is checked. A real chain of 6-8 RRsets with 1-2 RRSIGs each costs 6-16 with RSA-2048 keys,
up to 64 with RSA-4096 or P-256 keys; one P-384 zone under RSA parents about 70."""

SIGNATURE_COSTS: Final[dict[int, int]] = {
    # DNSSEC algorithm number: the cost of one check, in RSA-2048 verifications, as
    # measured with the cryptography package (OpenSSL 3), rounded up.
    13: 4,  # ECDSAP256SHA256
    14: 32,  # ECDSAP384SHA384
    15: 7,  # ED25519
    16: 13,  # ED448
}
"""The cost of a check with each non-RSA algorithm this library verifies. An RSA check costs
``(modulus bits / 2048)² x (exponent bits / 17)``, rounded up: 1 for RSA-2048, 4 for RSA-4096.
Other algorithms are never checked (dnspython's policy refuses RSAMD5 and DSA anyway)."""

RSA_ALGORITHMS: Final = frozenset({5, 7, 8, 10})  # RSASHA1(-NSEC3-SHA1), RSASHA256, RSASHA512

# --- The rest of a bundle ---------------------------------------------------------------------

MAX_DER_ELEMENTS: Final = 256
"""DER elements of a bundle outside its certificates and DNS messages, each a few µs of
Python to check and decode (a member SignatureBundle has about 100)."""

MAX_SIGNED_ATTRIBUTES: Final = 16
"""Signed attributes of the CMS signature (VeraId signs 3 or 4)."""

MAX_CERTIFICATE_BYTES: Final = 4096
"""Bytes of one certificate (VeraId's: ~1 KiB, 1.4 KiB with an RSA-4096 key). Its DER
checks walk every element, and asn1crypto makes a Python object of each extension and name
attribute read."""

MAX_CERTIFICATE_ELEMENTS: Final = 128
"""DER elements of one certificate: every VeraId certificate has 66 (ours and
``@relaycorp/veraid``'s, RSA-2048 to 4096, bot or user). Each costs ~5 µs of Python to
check and decode (asn1crypto, the strict DER checks), so a 4 KiB certificate of junk
extensions would cost ~4 ms."""

MAX_SIGNED_DATA_CERTIFICATES: Final = 2
"""Certificates in the CMS SignedData, each loaded to find the signer's. VeraId sends 1
(the member's); one more is allowed (an organisation certificate some producer might add).
Each costs up to ~1 ms of Python to decode at the limits above, so eight made the worst
bundle cost 14-16 ms of CPU, past the 10 ms every request must stay within."""
