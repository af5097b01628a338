"""VeraId in Python: verify and produce VeraId signature bundles and member id bundles.

Sans-I/O: bytes in, typed values out; DNSSEC chains are verified offline. Interoperable with
``@relaycorp/veraid`` (see ``tests/test_veraid_interop.py``).
"""

from veraid._asn1 import OID_TEST_SERVICE
from veraid._bundles import (
    Member,
    MemberIdVerification,
    SignatureVerification,
    UnverifiedSignatureBundle,
    VerificationCache,
    read_signature_bundle,
    serialise_member_id_bundle,
    sign_as_member,
    sign_as_organisation,
    verify_member_id_bundle,
    verify_signature_bundle,
)
from veraid._dns import (
    IANA_TRUST_ANCHORS,
    MAX_TTL_OVERRIDE,
    MockChain,
    TrustAnchor,
    TxtRdata,
    generate_mock_chain,
    generate_txt_rdata,
    parse_txt_rdata,
)
from veraid._errors import (
    CertificateError,
    ChainLimitError,
    DnssecError,
    InvalidNameError,
    InvalidSignatureError,
    LimitError,
    MalformedError,
    ServiceMismatchError,
    TxtRecordError,
    UnsupportedKeyError,
    UnsupportedVersionError,
    ValidityPeriodError,
    VeraidError,
)
from veraid._periods import DatePeriod
from veraid._pki import (
    BOT_NAME,
    issue_member_certificate,
    issue_organisation_certificate,
    validate_user_name,
)

__all__ = [
    "BOT_NAME",
    "IANA_TRUST_ANCHORS",
    "MAX_TTL_OVERRIDE",
    "OID_TEST_SERVICE",
    "CertificateError",
    "ChainLimitError",
    "DatePeriod",
    "DnssecError",
    "InvalidNameError",
    "InvalidSignatureError",
    "LimitError",
    "MalformedError",
    "Member",
    "MemberIdVerification",
    "MockChain",
    "ServiceMismatchError",
    "SignatureVerification",
    "TrustAnchor",
    "TxtRdata",
    "TxtRecordError",
    "UnsupportedKeyError",
    "UnsupportedVersionError",
    "UnverifiedSignatureBundle",
    "ValidityPeriodError",
    "VeraidError",
    "VerificationCache",
    "generate_mock_chain",
    "generate_txt_rdata",
    "issue_member_certificate",
    "issue_organisation_certificate",
    "parse_txt_rdata",
    "read_signature_bundle",
    "serialise_member_id_bundle",
    "sign_as_member",
    "sign_as_organisation",
    "validate_user_name",
    "verify_member_id_bundle",
    "verify_signature_bundle",
]
