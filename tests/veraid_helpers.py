"""Python-made VeraId material for the veraid tests: keys, a mock DNSSEC chain, certificates."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import rsa

import veraid

ORG = "example.com"
SERVICE = veraid.OID_TEST_SERVICE
PLAINTEXT = b"Hello VeraId"


@functools.cache
def rsa_key(index: int) -> rsa.RSAPrivateKey:
    """RSA-2048 keys are slow to generate: each test session makes each one once."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


ZONE_KEYS = (0, 1, 2)  # root, com., example.com.
ORG_KEY, MEMBER_KEY, OTHER_ORG_KEY = 3, 4, 5


@dataclass(frozen=True)
class Pki:
    """A consistent set of VeraId material, valid over ``period``."""

    now: datetime
    period: veraid.DatePeriod
    chain: veraid.MockChain
    org_certificate: bytes
    member_certificate: bytes

    @property
    def trust_anchors(self) -> list[veraid.TrustAnchor]:
        return [self.chain.trust_anchor]

    @property
    def member_id_bundle(self) -> bytes:
        return veraid.serialise_member_id_bundle(
            self.chain.responses, self.org_certificate, self.member_certificate
        )

    def member_signature(
        self,
        *,
        encapsulate: bool = False,
        plaintext: bytes = PLAINTEXT,
        service: str = SERVICE,
        period: veraid.DatePeriod | None = None,
    ) -> bytes:
        period = period or self.period
        return veraid.sign_as_member(
            plaintext,
            service,
            self.member_id_bundle,
            rsa_key(MEMBER_KEY),
            period.start,
            period.end,
            encapsulate=encapsulate,
        )

    def org_signature(self, user_name: str | None, *, encapsulate: bool = False) -> bytes:
        return veraid.sign_as_organisation(
            PLAINTEXT,
            SERVICE,
            self.chain.responses,
            self.org_certificate,
            rsa_key(ORG_KEY),
            self.period.start,
            self.period.end,
            user_name=user_name,
            encapsulate=encapsulate,
        )


def txt_rdata(
    ttl: timedelta = timedelta(hours=1), service: str | None = None, key: int = ORG_KEY
) -> str:
    return veraid.generate_txt_rdata(rsa_key(key).public_key(), ttl, service)


def make_chain(txt_records: Sequence[str], period: veraid.DatePeriod) -> veraid.MockChain:
    return veraid.generate_mock_chain(ORG, txt_records, period, [rsa_key(i) for i in ZONE_KEYS])


def make_pki(
    *,
    now: datetime | None = None,
    txt_records: Sequence[str] | None = None,
    chain_period: veraid.DatePeriod | None = None,
    org_period: veraid.DatePeriod | None = None,
    member_period: veraid.DatePeriod | None = None,
    member_name: str | None = "alice",
) -> Pki:
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    period = veraid.DatePeriod(now - timedelta(minutes=10), now + timedelta(hours=1))
    chain = make_chain(
        txt_records if txt_records is not None else [txt_rdata()], chain_period or period
    )
    org_period = org_period or period
    org = veraid.issue_organisation_certificate(
        ORG, rsa_key(ORG_KEY), org_period.start, org_period.end
    )
    member_period = member_period or period
    member = veraid.issue_member_certificate(
        member_name,
        rsa_key(MEMBER_KEY).public_key(),
        org,
        rsa_key(ORG_KEY),
        member_period.start,
        member_period.end,
    )
    return Pki(now, period, chain, org, member)


def with_chain(pki: Pki, responses: Sequence[bytes]) -> Pki:
    return replace(pki, chain=veraid.MockChain(tuple(responses), pki.chain.trust_anchor))
