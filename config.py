"""Configuration: read from the environment once, validated, at start-up.

Both processes (ingress and worker) call :func:`load_settings` before doing anything
else. Every problem found is reported at once, naming the variable, so an operator
fixes a deployment in one go instead of one crash at a time. Variable names follow
the original Letro server where it had one, and Temporal's own client conventions
(``TEMPORAL_*``) for the rest.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from contract.pairing import MAX_HISTORY_EVENTS
from letro.account_names import (
    DEFAULT_DOMAINS_BY_LOCALE,
    DEFAULT_FALLBACK_DOMAIN,
    DEFAULT_MAX_NAME_LENGTH,
    DEFAULT_RESERVED_WORDS,
)
from veraid import IANA_TRUST_ANCHORS, TrustAnchor

T = TypeVar("T")

Component = Literal["ingress", "worker"]


class ConfigError(Exception):
    """The environment does not describe a runnable service."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Invalid configuration: " + "; ".join(problems))
        self.problems = problems


class Transport(StrEnum):
    HTTP_BINARY = "ce-http-binary"
    GOOGLE_PUBSUB = "google-pubsub"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class TemporalSettings:
    address: str
    namespace: str
    task_queue: str
    api_key: str | None
    tls: bool
    tls_client_cert_path: Path | None
    tls_client_key_path: Path | None
    # Workflows the worker keeps in memory between tasks (the SDK's default).
    max_cached_workflows: int = 1000


@dataclass(frozen=True, slots=True)
class MongoSettings:
    uri: str
    database: str | None
    user: str | None
    password: str | None


DEFAULT_RESOLVER = "doh:https://cloudflare-dns.com/dns-query"


@dataclass(frozen=True, slots=True)
class DohResolver:
    """DNS-over-HTTPS (RFC 8484) to a validating resolver whose AD flag we trust."""

    url: str


@dataclass(frozen=True, slots=True)
class DnsResolver:
    """Plain DNS (UDP, TCP when truncated) to a validating resolver whose AD flag we trust."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class ConnectionParamsSettings:
    resolver: DohResolver | DnsResolver
    # Extra CA certificates (PEM) trusted for the DoH resolver and the parameters fetch,
    # on top of the default ones.
    ca_file: Path | None
    # How long transient failures are retried before the endpoint is reported misconfigured.
    retry_window: timedelta
    # Let SRV targets be at loopback, private, link-local... addresses: local development
    # and tests only, since it lets any requester make the worker connect inside its network.
    allow_private_addresses: bool = False


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """Account creation: the VeraId Authority and the naming rules."""

    vauth_api_url: str | None = None
    vauth_api_audience: str | None = None  # Google ID token audience, on Google Cloud
    vauth_api_token: str | None = None  # static bearer token, elsewhere
    # The defaults are the naming rules' own, declared once in letro/.
    max_name_length: int = DEFAULT_MAX_NAME_LENGTH
    reserved_words: tuple[str, ...] = tuple(DEFAULT_RESERVED_WORDS)
    domains_by_locale: tuple[tuple[str, str], ...] = tuple(DEFAULT_DOMAINS_BY_LOCALE.items())
    fallback_domain: str = DEFAULT_FALLBACK_DOMAIN
    name_attempts: int = 3
    authority_retry_seconds: float = 900.0
    dedup_window_seconds: float = 14 * 86400.0


GOOGLE_OIDC_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"


@dataclass(frozen=True, slots=True)
class PubSubPushSettings:
    """Authentication of Pub/Sub push requests by their OIDC token; off without an audience."""

    audience: str | None = None
    # Lower-cased service account emails, one of which must have signed the push.
    service_accounts: tuple[str, ...] = ()
    certs_url: str = GOOGLE_OIDC_CERTS_URL


@dataclass(frozen=True, slots=True)
class Settings:
    version: str
    log_level: str
    log_format: LogFormat
    request_id_header: str
    host: str
    port: int
    transport: Transport
    sink_url: str | None
    pubsub_topic: str | None  # always a full path: projects/<project>/topics/<topic>
    mongodb: MongoSettings
    temporal: TemporalSettings
    pairing_request_ttl: timedelta
    connection_params: ConnectionParamsSettings
    veraid_trust_anchors: tuple[TrustAnchor, ...] = IANA_TRUST_ANCHORS
    accounts: AccountSettings = field(default_factory=AccountSettings)
    # History length at which a pair workflow continues as new (see workflows.pairing).
    pairing_history_events: int = MAX_HISTORY_EVENTS
    pubsub_push: PubSubPushSettings = field(default_factory=PubSubPushSettings)


class _Reader:
    """Collects every problem while reading, so they can be reported together."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[str] = []

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def required(self, name: str, why: str = "") -> str:
        value = self.optional(name)
        if value is None:
            self.problems.append(f"{name} is required{why}")
            return ""
        return value

    def parsed(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not {expected}")
            return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = (self.optional(name) or default).lower()
        if raw not in choices:
            self.problems.append(f"{name}={raw!r} must be one of {', '.join(choices)}")
            return default
        return raw

    def url(self, name: str, *, required: bool, why: str = "") -> str | None:
        raw = self.required(name, why) if required else self.optional(name)
        if raw:
            parts = urlsplit(raw)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                self.problems.append(f"{name}={raw!r} is not an http(s) URL")
        return raw or None


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError(text)
    return value


def _resolver(text: str) -> DohResolver | DnsResolver:
    """``doh:<https URL>`` or ``dns:<IP address>[:<port>]`` (an IPv6 address in brackets)."""
    kind, _, rest = text.partition(":")
    if kind == "doh":
        parts = urlsplit(rest)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(text)
        return DohResolver(rest)
    if kind == "dns" and rest:
        parts = urlsplit(f"//{rest}")
        if not parts.hostname or parts.path or parts.query or parts.fragment:
            raise ValueError(text)
        # An address: looking up the resolver's own name would need another resolver.
        ipaddress.ip_address(parts.hostname)
        port = 53 if parts.port is None else parts.port
        return DnsResolver(parts.hostname, _port(str(port)))
    raise ValueError(text)


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def parse_trust_anchors(text: str) -> tuple[TrustAnchor, ...]:
    """DS records as ``<key tag> <algorithm> <digest type> <hex digest>``, one per line or ``;``.

    This is the presentation format of DS rdata (``dig DS .`` prints it after the owner,
    class and type), so an operator can paste a development chain's anchors as they are.
    """
    anchors = []
    for record in text.replace(";", "\n").splitlines():
        if not record.strip():
            continue
        fields = record.split()
        if len(fields) < 4:
            raise ValueError(record)
        key_tag, algorithm, digest_type = (int(field) for field in fields[:3])
        if not (0 <= key_tag < 65536 and 0 <= algorithm < 256 and 0 <= digest_type < 256):
            raise ValueError(record)
        anchors.append(
            TrustAnchor(key_tag, algorithm, digest_type, bytes.fromhex("".join(fields[3:])))
        )
    if not anchors:
        raise ValueError(text)
    return tuple(anchors)


def load_settings(component: Component, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration of ``component``; raise ConfigError if unusable."""
    read = _Reader(os.environ if environ is None else environ)

    transport = Transport(read.choice("CE_TRANSPORT", Transport.HTTP_BINARY, tuple(Transport)))
    # Only the worker emits messages, so only it needs to know where they go.
    needs_sink = component == "worker"
    sink_url = read.url(
        "K_SINK",
        required=needs_sink and transport is Transport.HTTP_BINARY,
        why=" when CE_TRANSPORT=ce-http-binary",
    )
    pubsub_topic = (
        read.required("CE_GPUBSUB_TOPIC", " when CE_TRANSPORT=google-pubsub")
        if needs_sink and transport is Transport.GOOGLE_PUBSUB
        else read.optional("CE_GPUBSUB_TOPIC")
    )
    google_project = read.optional("GOOGLE_CLOUD_PROJECT")
    if pubsub_topic and not pubsub_topic.startswith("projects/"):
        if google_project:
            pubsub_topic = f"projects/{google_project}/topics/{pubsub_topic}"
        elif needs_sink:
            read.problems.append(
                "GOOGLE_CLOUD_PROJECT is required when CE_GPUBSUB_TOPIC is not a full topic path"
                " (projects/<project>/topics/<topic>)"
            )

    api_key = read.optional("TEMPORAL_API_KEY")
    cert_path = read.optional("TEMPORAL_TLS_CLIENT_CERT_PATH")
    key_path = read.optional("TEMPORAL_TLS_CLIENT_KEY_PATH")
    if bool(cert_path) != bool(key_path):
        read.problems.append(
            "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH must be set together"
        )
    for name, path in (
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", cert_path),
        ("TEMPORAL_TLS_CLIENT_KEY_PATH", key_path),
    ):
        if path and not Path(path).is_file():
            read.problems.append(f"{name}={path!r} is not a readable file")
    temporal = TemporalSettings(
        address=read.optional("TEMPORAL_ADDRESS") or "localhost:7233",
        namespace=read.optional("TEMPORAL_NAMESPACE") or "default",
        task_queue=read.optional("TEMPORAL_TASK_QUEUE") or "letro-server",
        api_key=api_key,
        # A hosted cluster (API key or mTLS) always speaks TLS; TEMPORAL_TLS can still force it.
        tls=read.parsed("TEMPORAL_TLS", bool(api_key or cert_path), _boolean, "a boolean"),
        tls_client_cert_path=Path(cert_path) if cert_path else None,
        tls_client_key_path=Path(key_path) if key_path else None,
        max_cached_workflows=read.parsed(
            "TEMPORAL_MAX_CACHED_WORKFLOWS", 1000, _positive_int, "a positive integer"
        ),
    )

    mongodb = MongoSettings(
        uri=read.required("MONGODB_URI"),
        database=read.optional("MONGODB_DB"),
        user=read.optional("MONGODB_USER"),
        password=read.optional("MONGODB_PASSWORD"),
    )

    ca_file = read.optional("CONNECTION_PARAMS_CA_FILE")
    if ca_file and not Path(ca_file).is_file():
        read.problems.append(f"CONNECTION_PARAMS_CA_FILE={ca_file!r} is not a readable file")
    connection_params = ConnectionParamsSettings(
        resolver=read.parsed(
            "CONNECTION_PARAMS_RESOLVER",
            _resolver(DEFAULT_RESOLVER),
            _resolver,
            "doh:<https URL> or dns:<IP address>[:<port>]",
        ),
        ca_file=Path(ca_file) if ca_file else None,
        retry_window=timedelta(
            seconds=read.parsed(
                "CONNECTION_PARAMS_RETRY_SECONDS", 300, _positive_int, "a positive integer"
            )
        ),
        allow_private_addresses=read.parsed(
            "CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES", False, _boolean, "a boolean"
        ),
    )

    settings = Settings(
        version=read.required("VERSION"),
        log_level=read.choice("LOG_LEVEL", "info", LOG_LEVELS),
        log_format=LogFormat(read.choice("LOG_FORMAT", LogFormat.JSON, tuple(LogFormat))),
        request_id_header=(read.optional("REQUEST_ID_HEADER") or "X-Request-Id").lower(),
        host=read.optional("HOST") or "0.0.0.0",
        port=read.parsed("PORT", 8080, _port, "a TCP port"),
        transport=transport,
        sink_url=sink_url,
        pubsub_topic=pubsub_topic,
        mongodb=mongodb,
        temporal=temporal,
        pairing_request_ttl=timedelta(
            seconds=read.parsed(
                "PAIRING_REQUEST_TTL_SECONDS", 90 * 86400, _positive_int, "a positive integer"
            )
        ),
        connection_params=connection_params,
        pairing_history_events=read.parsed(
            "PAIRING_HISTORY_LIMIT_EVENTS", MAX_HISTORY_EVENTS, _positive_int, "a positive integer"
        ),
        veraid_trust_anchors=read.parsed(
            "VERAID_TRUST_ANCHORS",
            IANA_TRUST_ANCHORS,
            parse_trust_anchors,
            "a list of DS records ('<key tag> <algorithm> <digest type> <hex digest>; ...')",
        ),
    )
    settings = dataclasses.replace(
        settings,
        accounts=_account_settings(read),
        pubsub_push=_pubsub_push_settings(read, transport),
    )
    if read.problems:
        raise ConfigError(read.problems)
    return settings


def _words(text: str) -> tuple[str, ...]:
    words = tuple(word.strip().lower() for word in text.split(",") if word.strip())
    if not words:
        raise ValueError(text)
    return words


def _locale_map(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in text.split(","):
        locale, sep, domain = item.partition("=")
        if not sep or not locale.strip() or not domain.strip():
            raise ValueError(text)
        pairs.append((locale.strip().lower(), domain.strip().lower()))
    return tuple(pairs)


_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+")


def _service_accounts(text: str) -> tuple[str, ...]:
    accounts = tuple(item.strip().lower() for item in text.split(",") if item.strip())
    if not accounts or not all(_EMAIL.fullmatch(account) for account in accounts):
        raise ValueError(text)
    return accounts


def _pubsub_push_settings(read: _Reader, transport: Transport) -> PubSubPushSettings:
    audience = read.optional("PUBSUB_PUSH_AUDIENCE")
    no_accounts: tuple[str, ...] = ()
    accounts = read.parsed(
        "PUBSUB_PUSH_SERVICE_ACCOUNTS",
        no_accounts,
        _service_accounts,
        "a comma-separated list of service account emails",
    )
    certs_url = read.url("PUBSUB_PUSH_CERTS_URL", required=False)
    if bool(audience) != bool(read.optional("PUBSUB_PUSH_SERVICE_ACCOUNTS")):
        read.problems.append(
            "PUBSUB_PUSH_AUDIENCE and PUBSUB_PUSH_SERVICE_ACCOUNTS must be set together"
        )
    elif audience and transport is not Transport.GOOGLE_PUBSUB:
        # Not silently ignored: an operator would believe HTTP pushes are authenticated.
        read.problems.append(
            "PUBSUB_PUSH_AUDIENCE and PUBSUB_PUSH_SERVICE_ACCOUNTS need CE_TRANSPORT=google-pubsub"
        )
    return PubSubPushSettings(
        audience=audience,
        service_accounts=accounts,
        certs_url=certs_url or GOOGLE_OIDC_CERTS_URL,
    )


def _account_settings(read: _Reader) -> AccountSettings:
    defaults = AccountSettings()
    url = read.url("VAUTH_API_URL", required=False)
    audience = read.optional("VAUTH_API_AUDIENCE")
    token = read.optional("VAUTH_API_TOKEN")
    if url and bool(audience) == bool(token):
        read.problems.append(
            "Exactly one of VAUTH_API_AUDIENCE and VAUTH_API_TOKEN is required with VAUTH_API_URL"
        )
    return AccountSettings(
        vauth_api_url=url,
        vauth_api_audience=audience,
        vauth_api_token=token,
        max_name_length=read.parsed(
            "ACCOUNT_MAX_NAME_LENGTH", defaults.max_name_length, _positive_int, "a positive integer"
        ),
        reserved_words=read.parsed(
            "ACCOUNT_RESERVED_WORDS", defaults.reserved_words, _words, "a comma-separated list"
        ),
        domains_by_locale=read.parsed(
            "ACCOUNT_DOMAINS_BY_LOCALE",
            defaults.domains_by_locale,
            _locale_map,
            "a list of locale=domain pairs",
        ),
        fallback_domain=(
            read.optional("ACCOUNT_FALLBACK_DOMAIN") or defaults.fallback_domain
        ).lower(),
        name_attempts=read.parsed(
            "ACCOUNT_NAME_ATTEMPTS", defaults.name_attempts, _positive_int, "a positive integer"
        ),
        authority_retry_seconds=read.parsed(
            "VAUTH_RETRY_TIMEOUT_SECONDS",
            defaults.authority_retry_seconds,
            _positive_int,
            "a positive integer",
        ),
        dedup_window_seconds=read.parsed(
            "ACCOUNT_REQUEST_DEDUP_SECONDS",
            defaults.dedup_window_seconds,
            _positive_int,
            "a positive integer",
        ),
    )
