"""Account creation through the real stack, against the development VeraId Authority.

    python -m benchmarks.accounts [--accounts 300] [--concurrency 16] [--json]

Each account request is what Letro for Android sends: a signed ``account-request`` with an
RSA-PSS key (from a pool of ``--account-keys`` RSA-2048 keys, as generating one per
request would take minutes), a fresh name and one of four locales (three map to their own
domain, the fourth to the fallback). The development Authority (``infra.dev_authority``)
runs in its own process, so its CPU is accounted apart from the stack's and the load
generator's; it counts every call the worker makes to its API, which the report gives per
account.

Each account's request is posted, then its lane waits for the ``account-creation`` reply at
the sink before sending the next (``benchmarks.exchanges``). Printed: accounts/s, p50/p99
latency from the request POSTed to the reply at the sink, CPU per account by component, and
Authority calls per account. Each request must be accepted and get exactly one reply whose
bundle verifies under the Authority's trust anchor and names the account it assigned; the
exit status is 1 otherwise. The last line is a one-line summary.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

import veraid
from benchmarks.exchanges.command_line import add_common_options, run_benchmark
from benchmarks.exchanges.workload import Exchange, Message, Module
from benchmarks.pairing.command_line import positive_int
from benchmarks.pairing_protocols import generate_keys
from benchmarks.replies import ExpectedReply
from infra.agents import Signer, build_account_request, pss_signer, pss_spki
from infra.processes import ChildProcess, http_answers, python_module
from infra.services import LOOPBACK, free_port
from infra.sink import ReceivedEvent
from letro.account_messages import parse_account_creation, parse_account_request
from letro.account_names import NamingRules, domain_for_locale
from letro.contact_pairing import LETRO_SERVICE_OID
from letro.content_types import ACCOUNT_CREATION, ACCOUNT_REQUEST
from letro.errors import LetroProtocolError

# Three locales with a domain of their own and one that falls back to the default domain.
LOCALES = ("en-us", "en-gb", "es-ve", "fr-fr")
_AUTHORITY_READY_TIMEOUT = 60.0
_HTTP_TIMEOUT = 10.0


class AccountCreation(Module):
    name = "accounts"
    title = "Account creation"
    rate_unit = "accounts/s"

    def __init__(self, keys: Sequence[rsa.RSAPrivateKey]) -> None:
        # The SPKI and signer of each pool key, made once: every request reuses them.
        self._keys: list[tuple[bytes, Signer]] = [(pss_spki(k), pss_signer(k)) for k in keys]
        self._token = secrets.token_hex(16)
        self._url = ""
        self._process: ChildProcess | None = None
        self._trust_anchor: veraid.TrustAnchor | None = None

    @classmethod
    def create(cls, account_keys: int) -> AccountCreation:
        return cls(generate_keys(account_keys))

    @property
    def material(self) -> str:
        return (
            "account requests as Letro for Android signs them (RSA-PSS, RSA-2048, users"
            f" sharing {len(self._keys)} keys), {len(LOCALES)} locales; development Authority"
            " in its own process"
        )

    def make(self, run_id: str, phase: str, count: int) -> list[Exchange]:
        return [self._exchange(run_id, phase, index) for index in range(count)]

    def _exchange(self, run_id: str, phase: str, index: int) -> Exchange:
        # At most 16 characters, the default limit, so the name is kept as requested.
        user_name = f"u{run_id[:6]}{phase}{index}"
        sender = "0" + hashlib.sha256(f"account {user_name}".encode()).hexdigest()
        key_spki, sign = self._keys[index % len(self._keys)]
        body = build_account_request(user_name, LOCALES[index % len(LOCALES)], key_spki, sign)
        return Exchange(
            self.name,
            (Message(sender, ACCOUNT_REQUEST, body),),
            # The bundle is the Authority's to make: checked once it came (check_reply).
            (ExpectedReply(sender, ACCOUNT_CREATION),),
        )

    async def start(self, exits: AsyncExitStack, work_dir: Path) -> None:
        port = free_port()
        self._url = f"http://{LOOPBACK}:{port}"
        args = ("--port", str(port), "--token", self._token)
        process = ChildProcess(
            "dev-authority",
            python_module("infra.dev_authority", *args),
            env={},
            log_file=work_dir / "dev-authority.log",
        )
        exits.callback(process.stop)
        # Blocks the event loop while it waits, which is harmless: nothing is measured yet.
        process.start(
            ready=http_answers(f"{self._url}/_dev/calls"), timeout=_AUTHORITY_READY_TIMEOUT
        )
        self._process = process
        self._trust_anchor = _trust_anchor(await self._get("/_dev/trust-anchor"))

    def service_env(self) -> dict[str, str]:
        return {"VAUTH_API_URL": self._url, "VAUTH_API_TOKEN": self._token}

    def components(self) -> dict[str, list[int]]:
        return {"authority": [self._process.pid]} if self._process else {}

    async def counters(self) -> dict[str, int]:
        calls: dict[str, int] = (await self._get("/_dev/calls"))["calls"]
        # The total first: the summary line shows it.
        return {"Authority calls": sum(calls.values()), **dict(sorted(calls.items()))}

    async def _get(self, path: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=_HTTP_TIMEOUT) as http:
            response = await http.get(self._url + path)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def check_reply(self, exchange: Exchange, reply: ReceivedEvent) -> str | None:
        """The request echoed, and a bundle for the assigned id under the Authority's anchor."""
        request = parse_account_request(exchange.messages[0].body)
        try:
            requested, locale, assigned, bundle = parse_account_creation(reply.data)
        except LetroProtocolError:
            return "not an AccountCreation"
        if (requested, locale) != (request.user_name, request.locale):
            return "the request's name and locale not echoed"
        if not assigned.endswith("@" + domain_for_locale(locale, NamingRules())):
            return "not the locale's domain"
        anchors = [self._trust_anchor] if self._trust_anchor else []
        try:
            verified = veraid.verify_member_id_bundle(
                bundle, LETRO_SERVICE_OID, datetime.now(UTC), trust_anchors=anchors
            )
        except veraid.VeraidError:
            return "bundle does not verify"
        return None if str(verified.member) == assigned else "bundle of another member"


def _trust_anchor(body: dict[str, Any]) -> veraid.TrustAnchor:
    """The root DS the Authority's chains start from, as ``/_dev/trust-anchor`` gives it."""
    return veraid.TrustAnchor(
        int(body["keyTag"]),
        int(body["algorithm"]),
        int(body["digestType"]),
        bytes.fromhex(body["digest"]),
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.accounts",
        description="Measure account creation through the real stack and the dev Authority.",
    )
    add_common_options(parser, concurrency=16)
    add = parser.add_argument
    add("--accounts", type=positive_int, default=300, help="accounts in the measured phase")
    add("--account-keys", type=positive_int, default=16, help="RSA-2048 keys the users share")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_benchmark(
        args,
        benchmark="accounts",
        title="account creation",
        make_modules=lambda _: [AccountCreation.create(args.account_keys)],
        counts=lambda _: {AccountCreation.name: args.accounts},
    )


if __name__ == "__main__":
    sys.exit(main())
