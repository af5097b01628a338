"""The one error hierarchy of the library: every failure raises a subclass of VeraidError."""

from __future__ import annotations


class VeraidError(Exception):
    """Base class: anything the library refuses raises a subclass of this."""


class MalformedError(VeraidError):
    """Bytes that do not decode to the expected structure (DER, DNS wire format, TXT rdata)."""


class UnsupportedVersionError(MalformedError):
    """A bundle whose version is not 0."""


class InvalidSignatureError(VeraidError):
    """A CMS signature (or its signed attributes) that does not verify."""


class ServiceMismatchError(VeraidError):
    """A signature or TXT record bound to another service."""


class ValidityPeriodError(VeraidError):
    """Validity periods that do not overlap the required period or each other."""


class CertificateError(VeraidError):
    """A member certificate not issued by the organisation, or an unusable certificate."""


class DnssecError(VeraidError):
    """A DNSSEC chain that is incomplete, bogus or not anchored in the trust anchors."""


class TxtRecordError(VeraidError):
    """No usable ``_veraid`` TXT record (key mismatch, another service, ambiguity)."""


class InvalidNameError(VeraidError):
    """A user name or organisation name that VeraId does not allow."""


class UnsupportedKeyError(VeraidError):
    """A key VeraId does not support (only RSA 2048, 3072 and 4096 bits, exponents of at most
    33 bits)."""


class LimitError(VeraidError):
    """Input that would cost more to process than any real one does (``veraid._limits``):
    refused before that work is done, whether or not it is otherwise valid."""


class ChainLimitError(LimitError, DnssecError):
    """A DNSSEC chain over a limit: too many or too large responses, records or RRSIGs,
    colliding key tags, oversized keys, or signature checks costing too much."""
