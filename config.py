"""Configuration: read from the environment once, validated, at start-up.

Both processes (ingress and worker) call :func:`load_settings` before doing anything
else. Every problem found is reported at once, naming the variable, so an operator
fixes a deployment in one go instead of one crash at a time. Variable names follow
the original Letro server where it had one, and Temporal's own client conventions
(``TEMPORAL_*``) for the rest.

Each variable is declared once, as a :class:`Variable`: its name, its parser, its default
and its meaning. ``load_settings`` validates every declaration alike, then applies the few
rules that relate variables to each other, then builds the settings. The README's table
is checked against the declarations (tests/test_config_readme.py).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, cast
from urllib.parse import urlsplit

from contract.pairing import MAX_HISTORY_EVENTS, PAIR_LINGER
from letro.account_names import (
    DEFAULT_DOMAINS_BY_LOCALE,
    DEFAULT_FALLBACK_DOMAIN,
    DEFAULT_MAX_NAME_LENGTH,
    DEFAULT_RESERVED_WORDS,
)
from payload_codec import KEY_ID, KEY_ID_RULE, PayloadKey, PayloadKeyring
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


class LogTarget(StrEnum):
    """Where the logs are read, when that calls for a format of its own (see logs.py)."""

    GCP = "gcp"


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# The database used when neither MONGODB_DB nor the URI names one.
DEFAULT_DATABASE = "letro"


# The settings. Their fields have no defaults: every default is a variable's, declared below.


@dataclass(frozen=True, slots=True)
class TemporalSettings:
    address: str
    namespace: str
    task_queue: str
    api_key: str | None
    tls: bool
    tls_client_cert_path: Path | None
    tls_client_key_path: Path | None
    # Workflows the worker keeps in memory between tasks.
    max_cached_workflows: int
    # Set: every payload sent to Temporal is encrypted (see payload_codec).
    payload_keys: PayloadKeyring | None


@dataclass(frozen=True, slots=True)
class MongoSettings:
    uri: str
    database: str | None
    user: str | None
    password: str | None


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
    allow_private_addresses: bool


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """Account creation: the VeraId Authority and the naming rules."""

    vauth_api_url: str | None
    vauth_api_audience: str | None  # Google ID token audience, on Google Cloud
    vauth_api_token: str | None  # static bearer token, elsewhere
    max_name_length: int
    reserved_words: tuple[str, ...]
    domains_by_locale: tuple[tuple[str, str], ...]
    fallback_domain: str
    name_attempts: int
    authority_retry_seconds: float
    dedup_window_seconds: float
    authority_retry_max_interval_seconds: float


@dataclass(frozen=True, slots=True)
class PubSubPushSettings:
    """Authentication of Pub/Sub push requests by their OIDC token; off without an audience."""

    audience: str | None
    # Lower-cased service account emails, one of which must have signed the push.
    service_accounts: tuple[str, ...]
    certs_url: str


@dataclass(frozen=True, slots=True)
class CodecServerSettings:
    """The codec server (``python -m codec_server``): Temporal's tools decrypt through it."""

    log_level: str
    log_format: LogFormat
    host: str
    port: int
    # The Web UI origins whose pages may call it (CORS).
    cors_origins: tuple[str, ...]
    token: str | None  # bearer token every request must carry; None: no check
    payload_keys: PayloadKeyring


@dataclass(frozen=True, slots=True)
class Settings:
    version: str
    log_level: str
    log_format: LogFormat
    log_target: LogTarget | None
    google_project: str | None
    request_id_header: str
    host: str
    port: int
    metrics_port: int | None
    transport: Transport
    sink_url: str | None
    pubsub_topic: str | None  # a full path (projects/<project>/topics/<topic>) for the worker
    mongodb: MongoSettings
    temporal: TemporalSettings
    pairing_request_ttl: timedelta
    connection_params: ConnectionParamsSettings
    veraid_trust_anchors: tuple[TrustAnchor, ...]
    accounts: AccountSettings
    # History length at which a pair workflow continues as new (see workflows.pairing).
    pairing_history_events: int
    pubsub_push: PubSubPushSettings
    # How long a message is retried once its quick first attempts failed (workflows.replies).
    egress_retry_window: timedelta
    # How long a taken parcel has no second effect, whatever its type (ingress.parcel_ledger).
    dedup_window: timedelta
    # How long a pair workflow stays open after its last request (contract.pairing).
    pair_linger: timedelta


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """What the operator commands (``python -m admin``) read: the worker's stores and sink."""

    log_level: str
    log_format: LogFormat
    mongodb: MongoSettings
    temporal: TemporalSettings
    transport: Transport
    sink_url: str | None
    pubsub_topic: str | None


# How a variable's text becomes a value.


@dataclass(frozen=True, slots=True)
class Parser(Generic[T]):
    """A variable's format: its parse function, and what a text it refuses is said not to be."""

    parse: Callable[[str], T]  # raises ValueError for a text it refuses
    complaint: str  # ends the problem "NAME='text' <complaint>"
    # Lower-cased before parsing, and so in a problem: for names and fixed choices.
    case_insensitive: bool = False
    # The ValueError's message follows the complaint: where a long value went wrong.
    explains: bool = False
    # The text is never quoted in a problem (it holds keys), only the explanation, which the
    # parser writes without any secret in it.
    secret: bool = False

    def normal(self, text: str) -> str:
        return text.lower() if self.case_insensitive else text

    def problem(self, name: str, text: str, error: ValueError) -> str:
        subject = name if self.secret else f"{name}={text!r}"
        detail = f": {error}" if self.explains or self.secret else ""
        return f"{subject} {self.complaint}{detail}"


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _seconds(text: str) -> timedelta:
    return timedelta(seconds=_positive_int(text))


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError(text)
    return value


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _http_url(text: str) -> str:
    parts = urlsplit(text)  # raises ValueError itself on a malformed IPv6 host
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(text)
    return text


def _file(text: str) -> Path:
    # Checked now so that a wrong path stops the start, not the first connection.
    path = Path(text)
    if not path.is_file():
        raise ValueError(text)
    return path


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


def _payload_key(key_id: str, encoded: str, where: str) -> PayloadKey:
    """One key from its id and base64 text; errors name ``where`` and never the key."""
    try:
        secret = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError(f"{where}: the key is not base64") from None
    try:
        return PayloadKey(key_id, secret)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _payload_keys(keys: list[PayloadKey]) -> tuple[PayloadKey, ...]:
    ids = [key.key_id for key in keys]
    duplicates = sorted({key_id for key_id in ids if ids.count(key_id) > 1})
    if duplicates:
        raise ValueError(f"key ids given twice: {', '.join(duplicates)}")
    return tuple(keys)


def _key_list(text: str) -> tuple[PayloadKey, ...]:
    """``<id>:<base64 key>,...`` (the form of TEMPORAL_PAYLOAD_KEYS)."""
    keys = []
    for number, item in enumerate(text.split(","), start=1):
        key_id, sep, encoded = item.strip().partition(":")
        if not sep:
            raise ValueError(f"item {number} is not <id>:<base64 key>")
        keys.append(_payload_key(key_id.strip(), encoded.strip(), f"item {number}"))
    return _payload_keys(keys)


def _key_file(text: str) -> tuple[PayloadKey, ...]:
    """A file of ``<id> <base64 key>`` lines; blank lines and ``#`` comments are skipped."""
    try:
        content = Path(text).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot be read ({type(error).__name__})") from None
    keys = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"line {number} is not '<id> <base64 key>'")
        keys.append(_payload_key(fields[0], fields[1], f"line {number}"))
    if not keys:
        raise ValueError("it holds no key")
    return _payload_keys(keys)


def _key_id(text: str) -> str:
    if not KEY_ID.fullmatch(text):
        raise ValueError(text)
    return text


def _origin(text: str) -> str:
    """A web origin, ``http(s)://host[:port]``, as a browser sends it in ``Origin``."""
    parts = urlsplit(text)  # raises ValueError itself on a malformed IPv6 host
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        raise ValueError(text)
    if parts.path or parts.query or parts.fragment or parts.port == 0:
        raise ValueError(text)  # (reading .port raises ValueError too when out of range)
    return text


def _origins(text: str) -> tuple[str, ...]:
    origins = tuple(_origin(item.strip()) for item in text.split(",") if item.strip())
    if not origins:
        raise ValueError(text)
    return origins


def _choice(make: Callable[[str], T], choices: tuple[str, ...]) -> Parser[T]:
    def parse(text: str) -> T:
        if text not in choices:
            raise ValueError(text)
        return make(text)

    return Parser(parse, f"must be one of {', '.join(choices)}", case_insensitive=True)


def _alternatives(choices: tuple[str, ...]) -> str:
    """``a``, ``b`` or ``c``, as the README lists a variable's choices."""
    quoted = [f"`{choice}`" for choice in choices]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


TEXT = Parser(str, "")  # never refused
NAME = Parser(str, "", case_insensitive=True)  # a header or domain name
POSITIVE_INTEGER = Parser(_positive_int, "is not a positive integer")
SECONDS = Parser(_seconds, POSITIVE_INTEGER.complaint)  # a positive integer, as a timedelta
TCP_PORT = Parser(_port, "is not a TCP port")
BOOLEAN = Parser(_boolean, "is not a boolean")
HTTP_URL = Parser(_http_url, "is not an http(s) URL")
FILE = Parser(_file, "is not a readable file")
RESOLVER = Parser(_resolver, "is not doh:<https URL> or dns:<IP address>[:<port>]")
TRUST_ANCHORS = Parser(
    parse_trust_anchors,
    "is not a list of DS records ('<key tag> <algorithm> <digest type> <hex digest>; ...')",
)
WORDS = Parser(_words, "is not a comma-separated list")
LOCALE_DOMAINS = Parser(_locale_map, "is not a list of locale=domain pairs")
SERVICE_ACCOUNTS = Parser(
    _service_accounts, "is not a comma-separated list of service account emails"
)
KEY_LIST = Parser(
    _key_list, "is not a comma-separated list of <id>:<base64 32-byte key>", secret=True
)
KEY_FILE = Parser(_key_file, "is not a file of '<id> <base64 32-byte key>' lines", explains=True)
KEY_ID_TEXT = Parser(_key_id, f"is not a key id ({KEY_ID_RULE})")
ORIGINS = Parser(_origins, "is not a comma-separated list of http(s)://host[:port] origins")
TRANSPORTS = _choice(Transport, tuple(Transport))
LOG_FORMATS = _choice(LogFormat, tuple(LogFormat))
LOG_TARGETS = _choice(LogTarget, tuple(LogTarget))


@dataclass(frozen=True, slots=True)
class Variable(Generic[T]):
    """One environment variable: what load_settings reads and the README documents."""

    name: str
    parser: Parser[T]
    description: str  # the README's "meaning" cell, word for word
    # The settings field the value fills, as its path from Settings: "port" for
    # Settings.port, "temporal.address" for Settings.temporal.address. Empty where
    # load_settings derives a field from several variables (see _settings).
    setting: str = ""
    # The text assumed when the variable is unset, parsed as an operator's would be.
    default: str | None = None
    # Without a default text: the value assumed when unset (None if not given).
    unset: T | None = None
    # The README's default cell: a note in brackets after a literal default; without a
    # default, what unset means (empty: "none").
    default_doc: str = ""
    required: bool = False
    # Set when this library reads the variable, not load_settings: declared so that the
    # declarations name every variable the README does.
    library: str = ""

    @property
    def default_value(self) -> T | None:
        if self.default is None:
            return self.unset
        return self.parser.parse(self.parser.normal(self.default))


# The variables, one declaration each, grouped as the settings above.

# Settings: the process itself.
VERSION = Variable(
    "VERSION", TEXT, "version string, in every log line", required=True, setting="version"
)
HOST = Variable("HOST", TEXT, "address the ingress listens on", default="0.0.0.0", setting="host")
PORT = Variable("PORT", TCP_PORT, "TCP port the ingress listens on", default="8080", setting="port")
METRICS_PORT = Variable(
    "METRICS_PORT",
    TCP_PORT,
    "serve Prometheus metrics (the Temporal SDK's and ours) at `/metrics` on this port, in the"
    " worker and in the ingress",
    setting="metrics_port",
)
REQUEST_ID_HEADER = Variable(
    "REQUEST_ID_HEADER",
    NAME,
    "request header whose value is logged as `requestId` (Cloud Run: `X-Cloud-Trace-Context`)",
    default="X-Request-Id",
    setting="request_id_header",
)
LOG_LEVEL = Variable(
    "LOG_LEVEL",
    _choice(str, LOG_LEVELS),
    _alternatives(LOG_LEVELS),
    default="info",
    setting="log_level",
)
LOG_FORMAT = Variable(
    "LOG_FORMAT",
    LOG_FORMATS,
    "`json` (one object per line) or `console` (readable; `run` uses it)",
    default=LogFormat.JSON,
    setting="log_format",
)
LOG_TARGET = Variable(
    "LOG_TARGET",
    LOG_TARGETS,
    "`gcp`: JSON lines with Google Cloud Logging's fields (`severity`, `message`, the request's"
    " trace from `X-Cloud-Trace-Context`), whatever `LOG_FORMAT` says",
    setting="log_target",
)

# Settings: messages in and out.
CE_TRANSPORT = Variable(
    "CE_TRANSPORT",
    TRANSPORTS,
    f"{_alternatives(tuple(Transport))}, for messages in and out",
    default=Transport.HTTP_BINARY,
    setting="transport",
)
K_SINK = Variable(
    "K_SINK",
    HTTP_URL,
    "URL our outgoing CloudEvents are POSTed to",
    default_doc="required by the worker with `ce-http-binary`",
    setting="sink_url",
)
# With GOOGLE_CLOUD_PROJECT, makes Settings.pubsub_topic (see _pubsub_topic).
CE_GPUBSUB_TOPIC = Variable(
    "CE_GPUBSUB_TOPIC",
    TEXT,
    "topic for outgoing messages: `projects/P/topics/T`, or `T` with `GOOGLE_CLOUD_PROJECT`",
    default_doc="required by the worker with `google-pubsub`",
)
EGRESS_RETRY_SECONDS = Variable(
    "EGRESS_RETRY_SECONDS",
    SECONDS,
    "how long the worker keeps retrying a message the sink did not take (any error, a 4xx"
    " included) once its first quick attempts failed; then the message is kept in MongoDB"
    " (`undeliveredmessages`) for an operator and the workflow carries on",
    default="604800",
    default_doc="7 days",
    setting="egress_retry_window",
)
GOOGLE_CLOUD_PROJECT = Variable(
    "GOOGLE_CLOUD_PROJECT",
    TEXT,
    "project for a short topic name, and of the traces log lines name with `LOG_TARGET=gcp`",
    setting="google_project",
)
PUBSUB_EMULATOR_HOST = Variable(
    "PUBSUB_EMULATOR_HOST",
    TEXT,
    "use the Pub/Sub emulator at this `host:port` (read by the Google client)",
    library="google-cloud-pubsub",
)

# PubSubPushSettings.
PUBSUB_PUSH_AUDIENCE = Variable(
    "PUBSUB_PUSH_AUDIENCE",
    TEXT,
    "with `google-pubsub`: the audience push tokens must carry, the subscription's"
    " `--push-auth-token-audience` (set with `PUBSUB_PUSH_SERVICE_ACCOUNTS`)",
    default_doc="none (pushes not authenticated, warned at start-up)",
    setting="pubsub_push.audience",
)
PUBSUB_PUSH_SERVICE_ACCOUNTS = Variable(
    "PUBSUB_PUSH_SERVICE_ACCOUNTS",
    SERVICE_ACCOUNTS,
    "comma-separated service account emails allowed to push, the subscription's"
    " `--push-auth-service-account` (set with `PUBSUB_PUSH_AUDIENCE`)",
    unset=(),
    setting="pubsub_push.service_accounts",
)
PUBSUB_PUSH_CERTS_URL = Variable(
    "PUBSUB_PUSH_CERTS_URL",
    HTTP_URL,
    "Google's OIDC signing certificates, a JSON `{key id: PEM certificate}` (a test or mirror URL)",
    default="https://www.googleapis.com/oauth2/v1/certs",
    setting="pubsub_push.certs_url",
)

# MongoSettings.
MONGODB_URI = Variable(
    "MONGODB_URI", TEXT, "MongoDB connection string", required=True, setting="mongodb.uri"
)
MONGODB_DB = Variable(
    "MONGODB_DB",
    TEXT,
    "database name",
    default_doc=f"database in the URI, else `{DEFAULT_DATABASE}`",
    setting="mongodb.database",
)
MONGODB_USER = Variable(
    "MONGODB_USER", TEXT, "user name, if not in the URI", setting="mongodb.user"
)
MONGODB_PASSWORD = Variable(
    "MONGODB_PASSWORD", TEXT, "password, if not in the URI", setting="mongodb.password"
)

# TemporalSettings.
TEMPORAL_ADDRESS = Variable(
    "TEMPORAL_ADDRESS",
    TEXT,
    "Temporal frontend `host:port`",
    default="localhost:7233",
    setting="temporal.address",
)
TEMPORAL_NAMESPACE = Variable(
    "TEMPORAL_NAMESPACE",
    TEXT,
    "Temporal namespace",
    default="default",
    setting="temporal.namespace",
)
TEMPORAL_TASK_QUEUE = Variable(
    "TEMPORAL_TASK_QUEUE",
    TEXT,
    "task queue shared by ingress and worker",
    default="letro-server",
    setting="temporal.task_queue",
)
TEMPORAL_MAX_CACHED_WORKFLOWS = Variable(
    "TEMPORAL_MAX_CACHED_WORKFLOWS",
    POSITIVE_INTEGER,
    "workflows the worker keeps in memory between tasks; an evicted one is replayed from its"
    " history when next needed (a larger cache means longer garbage-collection pauses, a"
    " smaller one more replays)",
    default="1000",  # the SDK's own default
    setting="temporal.max_cached_workflows",
)
TEMPORAL_API_KEY = Variable(
    "TEMPORAL_API_KEY",
    TEXT,
    "API key for Temporal Cloud (turns TLS on)",
    setting="temporal.api_key",
)
# With TEMPORAL_API_KEY and the client certificate, makes TemporalSettings.tls.
TEMPORAL_TLS = Variable(
    "TEMPORAL_TLS",
    BOOLEAN,
    "force TLS on or off",
    default_doc="on with an API key or client certificate",
)
TEMPORAL_TLS_CLIENT_CERT_PATH = Variable(
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    FILE,
    "mTLS client certificate file (set with `TEMPORAL_TLS_CLIENT_KEY_PATH`)",
    setting="temporal.tls_client_cert_path",
)
TEMPORAL_TLS_CLIENT_KEY_PATH = Variable(
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    FILE,
    "mTLS client key file (set with `TEMPORAL_TLS_CLIENT_CERT_PATH`)",
    setting="temporal.tls_client_key_path",
)
# Read by the SDK's client configuration (connections.temporal_connect_options), like the
# TEMPORAL_* variables above, which it reads too.
TEMPORAL_TLS_SERVER_CA_CERT_PATH = Variable(
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    TEXT,
    "PEM file of the CA that signed the Temporal server's certificate (a private cluster)",
    library="temporalio.envconfig",
)
TEMPORAL_TLS_SERVER_NAME = Variable(
    "TEMPORAL_TLS_SERVER_NAME",
    TEXT,
    "TLS server name (SNI) to ask the Temporal server for, if not the address's host",
    library="temporalio.envconfig",
)
TEMPORAL_CONFIG_FILE = Variable(
    "TEMPORAL_CONFIG_FILE",
    TEXT,
    "Temporal client configuration file (TOML profiles); the `TEMPORAL_*` variables override it",
    library="temporalio.envconfig",
)
TEMPORAL_PROFILE = Variable(
    "TEMPORAL_PROFILE",
    TEXT,
    "profile of that file to use (`default` if unset)",
    library="temporalio.envconfig",
)

# TemporalSettings.payload_keys, made from the three (see _payload_keyring).
TEMPORAL_PAYLOAD_KEYS = Variable(
    "TEMPORAL_PAYLOAD_KEYS",
    KEY_LIST,
    "keys that encrypt every payload sent to Temporal (AES-256-GCM), the same for ingress, worker"
    " and codec server: comma-separated `<id>:<base64 32-byte key>`; all decrypt, the active"
    " one encrypts",
    default_doc="none (payloads not encrypted)",
)
TEMPORAL_PAYLOAD_KEYS_FILE = Variable(
    "TEMPORAL_PAYLOAD_KEYS_FILE",
    KEY_FILE,
    "or a file of them, one `<id> <base64 key>` per line (`#` comments allowed); set one of the"
    " two",
)
TEMPORAL_PAYLOAD_ACTIVE_KEY = Variable(
    "TEMPORAL_PAYLOAD_ACTIVE_KEY",
    KEY_ID_TEXT,
    "id of the key new payloads are encrypted with (one of the keys)",
    default_doc="required with keys",
)

# Settings: pairing.
PAIRING_REQUEST_TTL_SECONDS = Variable(
    "PAIRING_REQUEST_TTL_SECONDS",
    SECONDS,
    "how long an unmatched pairing request is kept",
    default="7776000",
    default_doc="90 days",
    setting="pairing_request_ttl",
)
PAIRING_HISTORY_LIMIT_EVENTS = Variable(
    "PAIRING_HISTORY_LIMIT_EVENTS",
    POSITIVE_INTEGER,
    "history length at which a pair workflow continues as new, even while requests keep"
    " arriving (read by the ingress, which starts the workflow)",
    default=str(MAX_HISTORY_EVENTS),
    setting="pairing_history_events",
)
PAIRING_LINGER_SECONDS = Variable(
    "PAIRING_LINGER_SECONDS",
    SECONDS,
    "how long a pair workflow stays open after its last request, holding the matched requests"
    " (at most DEDUP_WINDOW_SECONDS; later copies are dropped by the ingress)",
    default=str(int(PAIR_LINGER.total_seconds())),
    default_doc="1 hour",
    setting="pair_linger",
)
VERAID_TRUST_ANCHORS = Variable(
    "VERAID_TRUST_ANCHORS",
    TRUST_ANCHORS,
    "DNSSEC trust anchors for VeraId (read by the ingress, which verifies every"
    " SignatureBundle), as DS rdata separated by `;` or new lines: `<key tag> <algorithm>"
    " <digest type> <hex digest>` (for a test or development chain)",
    unset=IANA_TRUST_ANCHORS,
    default_doc="the DNS root's KSK-2017 and KSK-2024",
    setting="veraid_trust_anchors",
)

# ConnectionParamsSettings.
CONNECTION_PARAMS_RESOLVER = Variable(
    "CONNECTION_PARAMS_RESOLVER",
    RESOLVER,
    "validating DNS resolver whose AD flag is trusted: `doh:<https URL>` (DNS-over-HTTPS,"
    " RFC 8484) or `dns:<IP address>[:<port>]` (UDP, then TCP if truncated; IPv6 in brackets)",
    default="doh:https://cloudflare-dns.com/dns-query",  # as the original server
    setting="connection_params.resolver",
)
CONNECTION_PARAMS_CA_FILE = Variable(
    "CONNECTION_PARAMS_CA_FILE",
    FILE,
    "PEM file of extra CA certificates trusted for the DoH resolver and the parameter fetches"
    " (a private PKI)",
    setting="connection_params.ca_file",
)
CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES = Variable(
    "CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES",
    BOOLEAN,
    "let the worker fetch connection parameters from loopback, private, shared, link-local"
    " and unique local addresses (metadata services and special ranges stay refused): for"
    " local development and tests only, never in production, where it would let any"
    " requester reach the worker's network",
    default="false",
    setting="connection_params.allow_private_addresses",
)
CONNECTION_PARAMS_RETRY_SECONDS = Variable(
    "CONNECTION_PARAMS_RETRY_SECONDS",
    SECONDS,
    "how long transient failures are retried before the endpoint is reported misconfigured"
    " (read by the ingress, which starts the workflow)",
    default="300",
    setting="connection_params.retry_window",
)

# AccountSettings: the naming rules' defaults are letro's own, declared there.
VAUTH_API_URL = Variable(
    "VAUTH_API_URL",
    HTTP_URL,
    "VeraId Authority API base URL; without it the worker refuses account requests (logged)",
    setting="accounts.vauth_api_url",
)
VAUTH_API_AUDIENCE = Variable(
    "VAUTH_API_AUDIENCE",
    TEXT,
    "authenticate to the Authority with a Google ID token for this audience (Google Cloud)",
    setting="accounts.vauth_api_audience",
)
VAUTH_API_TOKEN = Variable(
    "VAUTH_API_TOKEN",
    TEXT,
    "or with this static bearer token (exactly one of the two with `VAUTH_API_URL`)",
    setting="accounts.vauth_api_token",
)
VAUTH_RETRY_TIMEOUT_SECONDS = Variable(
    "VAUTH_RETRY_TIMEOUT_SECONDS",
    POSITIVE_INTEGER,
    "how long each Authority call is retried on 5xx, 401, 403, timeouts and connection errors"
    " (as long as Pub/Sub keeps a message); then the request is dropped, logged",
    default="604800",
    default_doc="7 days",
    setting="accounts.authority_retry_seconds",
)
VAUTH_RETRY_MAX_INTERVAL_SECONDS = Variable(
    "VAUTH_RETRY_MAX_INTERVAL_SECONDS",
    POSITIVE_INTEGER,
    "the longest wait between two attempts of one Authority call (1 s doubling up to it),"
    " so a week of retries is about 2,000 attempts per call",
    default="300",
    default_doc="5 minutes",
    setting="accounts.authority_retry_max_interval_seconds",
)
ACCOUNT_MAX_NAME_LENGTH = Variable(
    "ACCOUNT_MAX_NAME_LENGTH",
    POSITIVE_INTEGER,
    "user names are cut to this many characters",
    default=str(DEFAULT_MAX_NAME_LENGTH),
    setting="accounts.max_name_length",
)
ACCOUNT_RESERVED_WORDS = Variable(
    "ACCOUNT_RESERVED_WORDS",
    WORDS,
    "comma-separated; a name containing a look-alike of one becomes a random name",
    default=",".join(DEFAULT_RESERVED_WORDS),
    setting="accounts.reserved_words",
)
ACCOUNT_DOMAINS_BY_LOCALE = Variable(
    "ACCOUNT_DOMAINS_BY_LOCALE",
    LOCALE_DOMAINS,
    "comma-separated `locale=domain`, matched case-insensitively",
    default=",".join(f"{locale}={domain}" for locale, domain in DEFAULT_DOMAINS_BY_LOCALE.items()),
    setting="accounts.domains_by_locale",
)
ACCOUNT_FALLBACK_DOMAIN = Variable(
    "ACCOUNT_FALLBACK_DOMAIN",
    NAME,
    "domain for any other locale",
    default=DEFAULT_FALLBACK_DOMAIN,
    setting="accounts.fallback_domain",
)
ACCOUNT_NAME_ATTEMPTS = Variable(
    "ACCOUNT_NAME_ATTEMPTS",
    POSITIVE_INTEGER,
    "names tried when taken: the name, then `name-NNNNN` with random digits",
    default="3",
    setting="accounts.name_attempts",
)
DEDUP_WINDOW_SECONDS = Variable(
    "DEDUP_WINDOW_SECONDS",
    SECONDS,
    "how long a taken parcel, of any type, has no second effect when it is delivered again (read"
    " by the ingress, which starts the workflows, and by the worker, for accounts): at least the"
    " broker's retention of unacknowledged messages",
    default="604800",
    default_doc="7 days, Pub/Sub's longest retention",
    setting="dedup_window",
)
# Variables that were replaced: setting one is refused at start-up, naming its successor, so
# that an operator does not believe it still has its effect.
RETIRED_VARIABLES: Mapping[str, Variable[Any]] = {
    "ACCOUNT_REQUEST_DEDUP_SECONDS": DEDUP_WINDOW_SECONDS,
}

# CodecServerSettings, with the payload keys and LOG_LEVEL / LOG_FORMAT.
CODEC_SERVER_HOST = Variable(
    "CODEC_SERVER_HOST",
    TEXT,
    "address the codec server listens on",
    default="127.0.0.1",
    setting="codec_server.host",
)
CODEC_SERVER_PORT = Variable(
    "CODEC_SERVER_PORT",
    TCP_PORT,
    "TCP port the codec server listens on",
    default="8234",
    setting="codec_server.port",
)
CODEC_SERVER_CORS_ORIGINS = Variable(
    "CODEC_SERVER_CORS_ORIGINS",
    ORIGINS,
    "comma-separated origins of the Temporal Web UIs whose pages may call the codec server",
    default="http://localhost:8233,http://127.0.0.1:8233",
    default_doc="the local dev server's Web UI",
    setting="codec_server.cors_origins",
)
CODEC_SERVER_TOKEN = Variable(
    "CODEC_SERVER_TOKEN",
    TEXT,
    "bearer token the codec server requires (`Authorization: Bearer <token>`)",
    default_doc="none (no check: keep the server on loopback)",
    setting="codec_server.token",
)

# Every declaration above, in order: collected rather than listed, so none can be left out.
VARIABLES: tuple[Variable[Any], ...] = tuple(
    value for value in globals().values() if isinstance(value, Variable)
)


class _Reader:
    """Every declared variable read and validated, and the problems found so far."""

    def __init__(
        self, environ: Mapping[str, str], variables: tuple[Variable[Any], ...] = VARIABLES
    ) -> None:
        self._environ = environ
        self._variables = variables
        self.problems: list[str] = []
        self._values = {v.name: self._parse(v) for v in variables if not v.library}

    def given(self, variable: Variable[Any]) -> bool:
        """Whether it is set, valid or not: what the rules between variables speak of."""
        return self._text(variable) is not None

    def given_name(self, name: str) -> bool:
        """Whether a variable that is not declared (a retired one) is set."""
        return bool(self._environ.get(name, "").strip())

    def optional(self, variable: Variable[T]) -> T | None:
        # The cast is sound: each value was made by its own variable's parser.
        return cast("T | None", self._values[variable.name])

    def value(self, variable: Variable[T]) -> T:
        """A variable with a default, or a required one once no problem was found."""
        value = self.optional(variable)
        if value is None:  # a declaration without default, read before its check: a bug
            raise LookupError(f"{variable.name} has no value")
        return value

    def section(self, name: str) -> dict[str, Any]:
        """The values of the fields of one settings object: ``name`` is its field in Settings,
        or "" for Settings' own."""
        fields = {}
        for variable in self._variables:
            section, _, field = variable.setting.rpartition(".")
            if field and section == name:
                fields[field] = self._values[variable.name]
        return fields

    def require(self, variable: Variable[Any], condition: str) -> None:
        if not self.given(variable):
            self.problems.append(f"{variable.name} is required {condition}")

    def _text(self, variable: Variable[Any]) -> str | None:
        return self._environ.get(variable.name, "").strip() or None

    def _parse(self, variable: Variable[T]) -> T | None:
        text = self._text(variable)
        if text is None:
            if variable.required:
                self.problems.append(f"{variable.name} is required")
            return variable.default_value
        text = variable.parser.normal(text)
        try:
            return variable.parser.parse(text)
        except ValueError as error:
            self.problems.append(variable.parser.problem(variable.name, text, error))
            # The default, so that the rules below can still run and report their problems.
            return variable.default_value


def load_settings(component: Component, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration of ``component``; raise ConfigError if unusable."""
    read = _Reader(os.environ if environ is None else environ)
    _check_destination(read, component)
    _check_temporal_tls(read)
    _check_authority(read)
    _check_pubsub_push(read)
    _check_payload_keys(read)
    _check_retired(read)
    if read.problems:
        raise ConfigError(read.problems)
    return _settings(read)


# What the codec server reads: it needs neither MongoDB nor Temporal, only the keys.
CODEC_SERVER_VARIABLES = (
    LOG_LEVEL,
    LOG_FORMAT,
    TEMPORAL_PAYLOAD_KEYS,
    TEMPORAL_PAYLOAD_KEYS_FILE,
    TEMPORAL_PAYLOAD_ACTIVE_KEY,
    CODEC_SERVER_HOST,
    CODEC_SERVER_PORT,
    CODEC_SERVER_CORS_ORIGINS,
    CODEC_SERVER_TOKEN,
)


def load_codec_server_settings(environ: Mapping[str, str] | None = None) -> CodecServerSettings:
    """The codec server's configuration; raise ConfigError if unusable."""
    read = _Reader(os.environ if environ is None else environ, CODEC_SERVER_VARIABLES)
    if not (read.given(TEMPORAL_PAYLOAD_KEYS) or read.given(TEMPORAL_PAYLOAD_KEYS_FILE)):
        read.problems.append(
            "TEMPORAL_PAYLOAD_KEYS or TEMPORAL_PAYLOAD_KEYS_FILE is required by the codec server"
        )
    _check_payload_keys(read)
    keyring = _payload_keyring(read)
    if read.problems or keyring is None:
        raise ConfigError(read.problems)
    return CodecServerSettings(
        log_level=read.value(LOG_LEVEL),
        log_format=read.value(LOG_FORMAT),
        **read.section("codec_server"),
        payload_keys=keyring,
    )


# What the operator commands read: the worker's MongoDB, Temporal and sink, and logging.
ADMIN_VARIABLES: tuple[Variable[Any], ...] = (
    LOG_LEVEL,
    LOG_FORMAT,
    CE_TRANSPORT,
    K_SINK,
    CE_GPUBSUB_TOPIC,
    GOOGLE_CLOUD_PROJECT,
    *(v for v in VARIABLES if v.name.startswith(("MONGODB_", "TEMPORAL_"))),
)


def load_admin_settings(
    environ: Mapping[str, str] | None = None, *, needs_sink: bool = False
) -> AdminSettings:
    """The operator commands' configuration (the sink only when ``needs_sink``); raise
    ConfigError if unusable."""
    read = _Reader(os.environ if environ is None else environ, ADMIN_VARIABLES)
    if needs_sink:
        _check_sink(read)
    _check_temporal_tls(read)
    _check_payload_keys(read)
    if read.problems:
        raise ConfigError(read.problems)
    return AdminSettings(
        log_level=read.value(LOG_LEVEL),
        log_format=read.value(LOG_FORMAT),
        mongodb=MongoSettings(**read.section("mongodb")),
        temporal=_temporal_settings(read),
        transport=read.value(CE_TRANSPORT),
        sink_url=read.optional(K_SINK),
        pubsub_topic=_pubsub_topic(read),
    )


# The rules between variables.


def _is_topic_path(topic: str) -> bool:
    return topic.startswith("projects/")


def _check_destination(read: _Reader, component: Component) -> None:
    # Only the worker emits messages, so only it needs to know where they go.
    if component == "worker":
        _check_sink(read)


def _check_sink(read: _Reader) -> None:
    if read.value(CE_TRANSPORT) is Transport.HTTP_BINARY:
        read.require(K_SINK, "when CE_TRANSPORT=ce-http-binary")
    else:
        read.require(CE_GPUBSUB_TOPIC, "when CE_TRANSPORT=google-pubsub")
    topic = read.optional(CE_GPUBSUB_TOPIC)
    if topic and not _is_topic_path(topic) and not read.given(GOOGLE_CLOUD_PROJECT):
        read.problems.append(
            "GOOGLE_CLOUD_PROJECT is required when CE_GPUBSUB_TOPIC is not a full topic path"
            " (projects/<project>/topics/<topic>)"
        )


def _check_temporal_tls(read: _Reader) -> None:
    if read.given(TEMPORAL_TLS_CLIENT_CERT_PATH) != read.given(TEMPORAL_TLS_CLIENT_KEY_PATH):
        read.problems.append(
            "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH must be set together"
        )


def _check_authority(read: _Reader) -> None:
    audience, token = read.given(VAUTH_API_AUDIENCE), read.given(VAUTH_API_TOKEN)
    if read.given(VAUTH_API_URL) and audience == token:
        read.problems.append(
            "Exactly one of VAUTH_API_AUDIENCE and VAUTH_API_TOKEN is required with VAUTH_API_URL"
        )


def _check_pubsub_push(read: _Reader) -> None:
    audience = read.given(PUBSUB_PUSH_AUDIENCE)
    if audience != read.given(PUBSUB_PUSH_SERVICE_ACCOUNTS):
        read.problems.append(
            "PUBSUB_PUSH_AUDIENCE and PUBSUB_PUSH_SERVICE_ACCOUNTS must be set together"
        )
    elif audience and read.value(CE_TRANSPORT) is not Transport.GOOGLE_PUBSUB:
        # Not silently ignored: an operator would believe HTTP pushes are authenticated.
        read.problems.append(
            "PUBSUB_PUSH_AUDIENCE and PUBSUB_PUSH_SERVICE_ACCOUNTS need CE_TRANSPORT=google-pubsub"
        )


def _check_retired(read: _Reader) -> None:
    for name, successor in RETIRED_VARIABLES.items():
        if read.given_name(name):
            read.problems.append(f"{name} was replaced by {successor.name}: set that instead")


def _check_payload_keys(read: _Reader) -> None:
    listed, filed = read.given(TEMPORAL_PAYLOAD_KEYS), read.given(TEMPORAL_PAYLOAD_KEYS_FILE)
    if listed and filed:
        read.problems.append("Set only one of TEMPORAL_PAYLOAD_KEYS and TEMPORAL_PAYLOAD_KEYS_FILE")
    if not (listed or filed):
        if read.given(TEMPORAL_PAYLOAD_ACTIVE_KEY):
            read.problems.append(
                "TEMPORAL_PAYLOAD_ACTIVE_KEY needs TEMPORAL_PAYLOAD_KEYS"
                " or TEMPORAL_PAYLOAD_KEYS_FILE"
            )
        return
    read.require(
        TEMPORAL_PAYLOAD_ACTIVE_KEY, "with TEMPORAL_PAYLOAD_KEYS or TEMPORAL_PAYLOAD_KEYS_FILE"
    )
    keys = read.optional(TEMPORAL_PAYLOAD_KEYS) or read.optional(TEMPORAL_PAYLOAD_KEYS_FILE)
    active = read.optional(TEMPORAL_PAYLOAD_ACTIVE_KEY)
    if keys and active and active not in (ids := [key.key_id for key in keys]):
        read.problems.append(
            f"TEMPORAL_PAYLOAD_ACTIVE_KEY={active!r} is not one of the keys: {', '.join(ids)}"
        )


# The settings, from values known to be valid: each variable fills the field it names,
# and only what is derived from several variables is built here.


def _settings(read: _Reader) -> Settings:
    return Settings(
        **read.section(""),
        pubsub_topic=_pubsub_topic(read),
        mongodb=MongoSettings(**read.section("mongodb")),
        temporal=_temporal_settings(read),
        connection_params=ConnectionParamsSettings(**read.section("connection_params")),
        # Accounts answer copies for the one window every message type shares.
        accounts=AccountSettings(
            **read.section("accounts"),
            dedup_window_seconds=read.value(DEDUP_WINDOW_SECONDS).total_seconds(),
        ),
        pubsub_push=PubSubPushSettings(**read.section("pubsub_push")),
    )


def _temporal_settings(read: _Reader) -> TemporalSettings:
    return TemporalSettings(
        **read.section("temporal"), tls=_temporal_tls(read), payload_keys=_payload_keyring(read)
    )


def _pubsub_topic(read: _Reader) -> str | None:
    """CE_GPUBSUB_TOPIC, as a full path when GOOGLE_CLOUD_PROJECT completes a short one."""
    topic, project = read.optional(CE_GPUBSUB_TOPIC), read.optional(GOOGLE_CLOUD_PROJECT)
    if topic and project and not _is_topic_path(topic):
        return f"projects/{project}/topics/{topic}"
    return topic


def _payload_keyring(read: _Reader) -> PayloadKeyring | None:
    keys = read.optional(TEMPORAL_PAYLOAD_KEYS) or read.optional(TEMPORAL_PAYLOAD_KEYS_FILE)
    active = read.optional(TEMPORAL_PAYLOAD_ACTIVE_KEY)
    if not keys or active is None or read.problems:
        return None
    return PayloadKeyring(keys, active)


def _temporal_tls(read: _Reader) -> bool:
    tls = read.optional(TEMPORAL_TLS)
    if tls is not None:
        return tls
    # A hosted cluster (API key or mTLS) always speaks TLS; TEMPORAL_TLS can still force it.
    return read.given(TEMPORAL_API_KEY) or read.given(TEMPORAL_TLS_CLIENT_CERT_PATH)
