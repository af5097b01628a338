"""Account creation messages: ``AccountRequestSignature`` in, ``AccountCreation`` out.

All tags are IMPLICIT and the encoding is DER. The request's signature covers the DER of
``AccountRequest`` as a plain universal SEQUENCE, not the ``[0]``-tagged bytes embedded in the
outer structure, so we rebuild that header before verifying.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asn1crypto import algos, core, keys, parser
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, padding, rsa

from letro.errors import (
    InvalidAccountRequestSignature,
    MalformedAccountRequest,
    UnsupportedAccountKey,
    UnusableMemberKey,
)

# What VeraId accepts as a member key (veraid/_pki.py and veraid/_limits.py, which
# tests/test_letro_account_messages.py compares these with): RSA of these sizes only, with an
# exponent short enough that verifying with it stays cheap.
MEMBER_KEY_MODULUS_BITS = frozenset({2048, 3072, 4096})
MEMBER_KEY_MAX_EXPONENT_BITS = 33

# asn1crypto raises any of these on malformed input.
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


class AccountRequest(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("user_name", core.UTF8String, {"implicit": 0}),
        ("locale", core.VisibleString, {"implicit": 1}),
        ("public_key", keys.PublicKeyInfo, {"implicit": 2}),
    ]


class AccountRequestSignature(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("request", AccountRequest, {"implicit": 0}),
        ("signature", core.OctetBitString, {"implicit": 1}),
    ]


class AccountCreation(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("requested_user_name", core.UTF8String, {"implicit": 0}),
        ("locale", core.VisibleString, {"implicit": 1}),
        ("assigned_user_id", core.UTF8String, {"implicit": 2}),
        ("veraid_bundle", core.OctetString, {"implicit": 3}),
    ]


@dataclass(frozen=True, slots=True)
class SignedAccountRequest:
    """A decoded (not yet verified) account request."""

    user_name: str
    locale: str
    public_key_der: bytes  # SubjectPublicKeyInfo, exactly as received
    signed_bytes: bytes  # DER of AccountRequest as a universal SEQUENCE
    signature: bytes


def _sequence(contents: bytes) -> bytes:
    encoded: bytes = parser.emit(0, 1, 16, contents)
    return encoded


def parse_account_request(data: bytes) -> SignedAccountRequest:
    """Decode a DER ``AccountRequestSignature``; raise MalformedAccountRequest if it is not."""
    try:
        outer = AccountRequestSignature.load(data, strict=True)
        native: Any = outer.native  # forces every lazily parsed child
        request = outer["request"]
        signature_field = outer["signature"]
        # Re-encoding from the parsed values and comparing catches every non-DER encoding
        # (non-minimal or indefinite lengths, constructed strings) in one place.
        reencoded = AccountRequestSignature(
            {
                "request": AccountRequest(
                    {
                        "user_name": native["request"]["user_name"],
                        "locale": native["request"]["locale"],
                        "public_key": keys.PublicKeyInfo.load(
                            _sequence(request["public_key"].contents)
                        ),
                    }
                ),
                "signature": core.OctetBitString(signature_field.native),
            }
        ).dump()
    except _ASN1_ERRORS as error:
        raise MalformedAccountRequest(f"Not an AccountRequestSignature: {error}") from None
    if reencoded != data:
        raise MalformedAccountRequest("AccountRequestSignature is not DER")
    return SignedAccountRequest(
        user_name=native["request"]["user_name"],
        locale=native["request"]["locale"],
        public_key_der=_sequence(request["public_key"].contents),
        signed_bytes=_sequence(request.contents),
        signature=signature_field.native,
    )


_PSS_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _pss_padding(parameters: algos.RSASSAPSSParams) -> tuple[padding.PSS, hashes.HashAlgorithm]:
    try:
        hash_name = parameters["hash_algorithm"]["algorithm"].native
        mgf = parameters["mask_gen_algorithm"]
        mgf_name = mgf["algorithm"].native
        mgf_hash_name = mgf["parameters"]["algorithm"].native
        salt_length = parameters["salt_length"].native
        trailer = parameters["trailer_field"].native
    except _ASN1_ERRORS as error:
        raise UnsupportedAccountKey(f"Malformed RSA-PSS parameters: {error}") from None
    if hash_name not in _PSS_HASHES or mgf_hash_name not in _PSS_HASHES:
        raise UnsupportedAccountKey(f"Unsupported RSA-PSS hash {hash_name}/{mgf_hash_name}")
    if mgf_name != "mgf1" or trailer not in (1, "trailer_field_bc"):
        raise UnsupportedAccountKey("Unsupported RSA-PSS mask generation or trailer field")
    pss = padding.PSS(mgf=padding.MGF1(_PSS_HASHES[mgf_hash_name]()), salt_length=salt_length)
    return pss, _PSS_HASHES[hash_name]()


def verify_account_request(request: SignedAccountRequest) -> None:
    """Check the request's signature with its own key.

    Raise UnsupportedAccountKey for a key we cannot use, InvalidAccountRequestSignature if the
    signature does not verify.
    """
    try:
        info = keys.PublicKeyInfo.load(request.public_key_der, strict=True)
        algorithm = info["algorithm"]["algorithm"].native
        parameters = info["algorithm"]["parameters"]
    except _ASN1_ERRORS as error:
        raise UnsupportedAccountKey(f"Malformed public key: {error}") from None
    try:
        key = serialization.load_der_public_key(request.public_key_der)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise UnsupportedAccountKey(f"Unusable {algorithm} public key: {error}") from None
    try:
        if algorithm == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            # cryptography drops the parameters when loading, so we take them from the SPKI.
            if isinstance(parameters, core.Void) or parameters.native is None:
                raise UnsupportedAccountKey("RSA-PSS key without parameters")
            pss, hash_algorithm = _pss_padding(parameters)
            key.verify(request.signature, request.signed_bytes, pss, hash_algorithm)
        elif algorithm == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(request.signature, request.signed_bytes, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(request.signature, request.signed_bytes)
        else:
            raise UnsupportedAccountKey(f"Unsupported key algorithm {algorithm}")
    except InvalidSignature:
        raise InvalidAccountRequestSignature("Account request signature is invalid") from None
    except ValueError as error:  # e.g. a salt length the key size cannot hold
        raise InvalidAccountRequestSignature(
            f"Account request signature is invalid: {error}"
        ) from None


def check_member_key(public_key_der: bytes) -> None:
    """Raise UnusableMemberKey unless VeraId could certify this key for a member.

    The VeraId Authority imports any key, then fails for ever when asked for the bundle of one
    that is not RSA (it reads every member key as RSA-PSS), so the request is refused here,
    before any member exists. ``public_key_der`` is the SPKI of a verified request.
    """
    try:
        key = serialization.load_der_public_key(public_key_der)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise UnusableMemberKey(f"Unreadable public key: {error}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        kind = type(key).__name__.removeprefix("_").removesuffix("PublicKey") or "unknown"
        raise UnusableMemberKey(f"VeraId member keys are RSA; this one is {kind}")
    if key.key_size not in MEMBER_KEY_MODULUS_BITS:
        sizes = ", ".join(str(size) for size in sorted(MEMBER_KEY_MODULUS_BITS))
        raise UnusableMemberKey(f"RSA key of {key.key_size} bits; VeraId takes {sizes}")
    exponent_bits = key.public_numbers().e.bit_length()
    if exponent_bits > MEMBER_KEY_MAX_EXPONENT_BITS:
        raise UnusableMemberKey(
            f"RSA exponent of {exponent_bits} bits; VeraId takes at most"
            f" {MEMBER_KEY_MAX_EXPONENT_BITS}"
        )


def serialise_account_request(user_name: str, locale: str, public_key_der: bytes) -> bytes:
    """DER ``AccountRequest`` as a universal SEQUENCE: the bytes an agent signs."""
    value = AccountRequest(
        {
            "user_name": user_name,
            "locale": locale,
            "public_key": keys.PublicKeyInfo.load(public_key_der),
        }
    )
    encoded: bytes = value.dump()
    return encoded


def serialise_account_request_signature(request_der: bytes, signature: bytes) -> bytes:
    """DER ``AccountRequestSignature`` from a DER ``AccountRequest`` and its signature."""
    request = AccountRequest.load(request_der)
    value = AccountRequestSignature(
        {"request": request.copy(), "signature": core.OctetBitString(signature)}
    )
    encoded: bytes = value.dump(force=True)
    return encoded


def serialise_account_creation(
    requested_user_name: str, locale: str, assigned_user_id: str, veraid_bundle: bytes
) -> bytes:
    """DER ``AccountCreation``."""
    value = AccountCreation(
        {
            "requested_user_name": requested_user_name,
            "locale": locale,
            "assigned_user_id": assigned_user_id,
            "veraid_bundle": veraid_bundle,
        }
    )
    encoded: bytes = value.dump()
    return encoded


def parse_account_creation(data: bytes) -> tuple[str, str, str, bytes]:
    """Decode a DER ``AccountCreation`` (what an agent does with our reply)."""
    try:
        value = AccountCreation.load(data, strict=True)
        native = value.native
    except _ASN1_ERRORS as error:
        raise MalformedAccountRequest(f"Not an AccountCreation: {error}") from None
    return (
        native["requested_user_name"],
        native["locale"],
        native["assigned_user_id"],
        native["veraid_bundle"],
    )
