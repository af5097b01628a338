"""Configuration is read once, validated, and every problem is named at start-up."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from config import ConfigError, DnsResolver, DohResolver, LogFormat, Transport, load_settings

MINIMAL = {"VERSION": "1.2.3", "MONGODB_URI": "mongodb://db.example:27017/letro"}


def test_defaults_for_the_ingress() -> None:
    settings = load_settings("ingress", MINIMAL)
    assert settings.version == "1.2.3"
    assert settings.transport is Transport.HTTP_BINARY
    assert settings.log_level == "info"
    assert settings.log_format is LogFormat.JSON
    assert settings.request_id_header == "x-request-id"
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.temporal.address == "localhost:7233"
    assert settings.temporal.namespace == "default"
    assert settings.temporal.task_queue == "letro-server"
    assert settings.temporal.tls is False
    assert settings.temporal.max_cached_workflows == 1000
    assert settings.pairing_request_ttl == timedelta(days=90)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings("worker", {"LOG_LEVEL": "verbose", "PORT": "http", "CE_TRANSPORT": "kafka"})
    problems = " | ".join(error.value.problems)
    for expected in (
        "VERSION is required",
        "MONGODB_URI is required",
        "LOG_LEVEL='verbose'",
        "PORT='http' is not a TCP port",
        "CE_TRANSPORT='kafka' must be one of",
    ):
        assert expected in problems
    assert str(error.value).startswith("Invalid configuration: ")


def test_worker_needs_a_sink_for_http() -> None:
    with pytest.raises(ConfigError, match="K_SINK is required when CE_TRANSPORT=ce-http-binary"):
        load_settings("worker", MINIMAL)
    assert (
        load_settings("worker", {**MINIMAL, "K_SINK": "http://broker/"}).sink_url
        == "http://broker/"
    )
    # The ingress emits nothing, so it does not need one.
    assert load_settings("ingress", MINIMAL).sink_url is None


def test_sink_must_be_a_url() -> None:
    with pytest.raises(ConfigError, match="K_SINK='broker' is not an http"):
        load_settings("worker", {**MINIMAL, "K_SINK": "broker"})


def test_pubsub_topic_is_required_and_expanded_to_a_full_path() -> None:
    pubsub = {**MINIMAL, "CE_TRANSPORT": "google-pubsub"}
    with pytest.raises(ConfigError, match="CE_GPUBSUB_TOPIC is required"):
        load_settings("worker", pubsub)
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT is required"):
        load_settings("worker", {**pubsub, "CE_GPUBSUB_TOPIC": "outgoing"})
    short = load_settings(
        "worker", {**pubsub, "CE_GPUBSUB_TOPIC": "outgoing", "GOOGLE_CLOUD_PROJECT": "letro"}
    )
    assert short.pubsub_topic == "projects/letro/topics/outgoing"
    full = load_settings("worker", {**pubsub, "CE_GPUBSUB_TOPIC": "projects/p/topics/t"})
    assert full.pubsub_topic == "projects/p/topics/t"


def test_hosted_temporal_with_api_key_uses_tls() -> None:
    settings = load_settings(
        "worker",
        {
            **MINIMAL,
            "K_SINK": "https://sink/",
            "TEMPORAL_ADDRESS": "ns.acct.tmprl.cloud:7233",
            "TEMPORAL_NAMESPACE": "ns.acct",
            "TEMPORAL_API_KEY": "secret",
        },
    )
    assert settings.temporal.tls is True
    assert settings.temporal.api_key == "secret"
    assert settings.temporal.namespace == "ns.acct"


def test_mtls_needs_both_files(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("cert")
    with pytest.raises(ConfigError, match="must be set together"):
        load_settings("ingress", {**MINIMAL, "TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert)})
    with pytest.raises(ConfigError, match="is not a readable file"):
        load_settings(
            "ingress",
            {
                **MINIMAL,
                "TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert),
                "TEMPORAL_TLS_CLIENT_KEY_PATH": str(tmp_path / "missing.pem"),
            },
        )
    key = tmp_path / "client.key"
    key.write_text("key")
    settings = load_settings(
        "ingress",
        {
            **MINIMAL,
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(key),
        },
    )
    assert settings.temporal.tls is True


def test_workflow_cache_size() -> None:
    settings = load_settings(
        "worker",
        {**MINIMAL, "K_SINK": "http://sink.example/", "TEMPORAL_MAX_CACHED_WORKFLOWS": "40"},
    )
    assert settings.temporal.max_cached_workflows == 40
    for value in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="TEMPORAL_MAX_CACHED_WORKFLOWS"):
            load_settings(
                "worker",
                {
                    **MINIMAL,
                    "K_SINK": "http://sink.example/",
                    "TEMPORAL_MAX_CACHED_WORKFLOWS": value,
                },
            )


def test_values_are_normalised() -> None:
    settings = load_settings(
        "ingress",
        {
            **MINIMAL,
            "LOG_LEVEL": "DEBUG",
            "REQUEST_ID_HEADER": "X-Cloud-Trace-Context",
            "PAIRING_REQUEST_TTL_SECONDS": "5",
            "LOG_FORMAT": "console",
        },
    )
    assert settings.log_level == "debug"
    assert settings.request_id_header == "x-cloud-trace-context"
    assert settings.pairing_request_ttl == timedelta(seconds=5)
    assert settings.log_format is LogFormat.CONSOLE


def test_connection_params_defaults() -> None:
    settings = load_settings("worker", {**MINIMAL, "K_SINK": "http://broker/"}).connection_params
    # As the original server: Cloudflare's validating resolver over HTTPS, trusting its AD flag.
    assert settings.resolver == DohResolver("https://cloudflare-dns.com/dns-query")
    assert settings.ca_file is None
    assert settings.retry_window == timedelta(minutes=5)
    assert settings.allow_private_addresses is False  # production: public targets only


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("off", False)])
def test_connection_params_private_addresses_can_be_allowed(value: str, expected: bool) -> None:
    settings = load_settings(
        "worker",
        {**MINIMAL, "K_SINK": "http://broker/", "CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES": value},
    )
    assert settings.connection_params.allow_private_addresses is expected


def test_connection_params_private_addresses_setting_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings("ingress", {**MINIMAL, "CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES": "maybe"})
    assert error.value.problems == [
        "CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES='maybe' is not a boolean"
    ]


RESOLVERS = {
    "doh:https://dns.example/dns-query": DohResolver("https://dns.example/dns-query"),
    "doh:https://127.0.0.1:8443/q": DohResolver("https://127.0.0.1:8443/q"),
    "dns:127.0.0.1:5353": DnsResolver("127.0.0.1", 5353),
    "dns:9.9.9.9": DnsResolver("9.9.9.9", 53),
    "dns:[2620:fe::fe]:53": DnsResolver("2620:fe::fe", 53),
}


@pytest.mark.parametrize(("value", "expected"), RESOLVERS.items(), ids=RESOLVERS.keys())
def test_connection_params_resolver(value: str, expected: DnsResolver | DohResolver) -> None:
    settings = load_settings("ingress", {**MINIMAL, "CONNECTION_PARAMS_RESOLVER": value})
    assert settings.connection_params.resolver == expected


@pytest.mark.parametrize(
    "value",
    [
        "https://dns.example/dns-query",
        "doh:http://dns.example/dns-query",
        "doh:",
        "dns:",
        "dns:resolver.example:53",
        "dns:127.0.0.1:0",
        "dns:127.0.0.1:70000",
        "dns:127.0.0.1/path",
        "tls:127.0.0.1:853",
    ],
)
def test_malformed_resolver_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"CONNECTION_PARAMS_RESOLVER=.* is not doh:"):
        load_settings("ingress", {**MINIMAL, "CONNECTION_PARAMS_RESOLVER": value})


def test_connection_params_ca_file_and_retry_window(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings(
        "ingress",
        {**MINIMAL, "CONNECTION_PARAMS_CA_FILE": str(ca), "CONNECTION_PARAMS_RETRY_SECONDS": "7"},
    ).connection_params
    assert settings.ca_file == ca
    assert settings.retry_window == timedelta(seconds=7)
    with pytest.raises(ConfigError) as error:
        load_settings(
            "ingress",
            {
                **MINIMAL,
                "CONNECTION_PARAMS_CA_FILE": str(tmp_path / "missing.pem"),
                "CONNECTION_PARAMS_RETRY_SECONDS": "0",
            },
        )
    assert error.value.problems == [
        f"CONNECTION_PARAMS_CA_FILE={str(tmp_path / 'missing.pem')!r} is not a readable file",
        "CONNECTION_PARAMS_RETRY_SECONDS='0' is not a positive integer",
    ]


@pytest.mark.parametrize("command", [["-m", "ingress"], ["worker.py"]])
def test_processes_refuse_to_start_with_a_clear_message(command: list[str]) -> None:
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, *command],
        cwd=root,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "VERSION is required" in result.stderr
    assert "MONGODB_URI is required" in result.stderr


def test_veraid_trust_anchors_default_to_the_dns_root() -> None:
    import veraid

    assert load_settings("worker", {**MINIMAL, "K_SINK": "http://sink"}).veraid_trust_anchors == (
        veraid.IANA_TRUST_ANCHORS
    )


def test_veraid_trust_anchors_are_ds_records() -> None:
    import veraid

    settings = load_settings(
        "worker",
        {
            **MINIMAL,
            "K_SINK": "http://sink",
            "VERAID_TRUST_ANCHORS": "12345 8 2 ABCD ef01;\n 20326 8 2 e06d44b8\n",
        },
    )
    assert settings.veraid_trust_anchors == (
        veraid.TrustAnchor(12345, 8, 2, bytes.fromhex("abcdef01")),
        veraid.TrustAnchor(20326, 8, 2, bytes.fromhex("e06d44b8")),
    )


@pytest.mark.parametrize("value", ["12345 8 2", "x 8 2 ab", "12345 8 2 zz", "70000 8 2 ab", ";"])
def test_malformed_veraid_trust_anchors_are_named(value: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings("worker", {**MINIMAL, "K_SINK": "http://sink", "VERAID_TRUST_ANCHORS": value})
    assert "VERAID_TRUST_ANCHORS" in str(error.value)


def test_account_creation_defaults() -> None:
    accounts = load_settings("worker", {**MINIMAL, "K_SINK": "http://broker/"}).accounts
    assert accounts.vauth_api_url is None
    assert accounts.max_name_length == 16
    assert "gusnarea" in accounts.reserved_words
    assert dict(accounts.domains_by_locale) == {
        "en-us": "applepie.rocks",
        "en-gb": "cuppa.fans",
        "es-ve": "guarapo.cafe",
    }
    assert accounts.fallback_domain == "nautilus.ink"
    assert accounts.name_attempts == 3
    assert accounts.authority_retry_seconds == 7 * 24 * 3600  # as long as Pub/Sub keeps it
    assert accounts.authority_retry_max_interval_seconds == 300


def test_account_creation_settings() -> None:
    accounts = load_settings(
        "worker",
        {
            **MINIMAL,
            "K_SINK": "http://broker/",
            "VAUTH_API_URL": "https://authority.example/",
            "VAUTH_API_AUDIENCE": "https://authority.example",
            "ACCOUNT_MAX_NAME_LENGTH": "20",
            "ACCOUNT_RESERVED_WORDS": " Admin, root ,",
            "ACCOUNT_DOMAINS_BY_LOCALE": "EN-US=applepie.rocks, fr-fr = Croissant.Test",
            "ACCOUNT_FALLBACK_DOMAIN": "Elsewhere.Test",
            "ACCOUNT_NAME_ATTEMPTS": "5",
            "VAUTH_RETRY_TIMEOUT_SECONDS": "60",
            "VAUTH_RETRY_MAX_INTERVAL_SECONDS": "2",
            "DEDUP_WINDOW_SECONDS": "3600",
        },
    ).accounts
    assert accounts.vauth_api_url == "https://authority.example/"
    assert accounts.vauth_api_audience == "https://authority.example"
    assert accounts.vauth_api_token is None
    assert accounts.max_name_length == 20
    assert accounts.reserved_words == ("admin", "root")
    assert accounts.domains_by_locale == (("en-us", "applepie.rocks"), ("fr-fr", "croissant.test"))
    assert accounts.fallback_domain == "elsewhere.test"
    assert (accounts.name_attempts, accounts.authority_retry_seconds) == (5, 60)
    assert accounts.dedup_window_seconds == 3600
    assert accounts.authority_retry_max_interval_seconds == 2


def test_the_dedup_window_defaults_to_a_week_for_every_message_type() -> None:
    settings = load_settings("ingress", MINIMAL)
    assert settings.dedup_window == timedelta(days=7)
    assert settings.accounts.dedup_window_seconds == 7 * 86400


def test_the_retired_account_dedup_variable_is_refused_naming_its_successor() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings("ingress", {**MINIMAL, "ACCOUNT_REQUEST_DEDUP_SECONDS": "3600"})
    assert error.value.problems == [
        "ACCOUNT_REQUEST_DEDUP_SECONDS was replaced by DEDUP_WINDOW_SECONDS: set that instead"
    ]


def test_account_creation_problems() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(
            "worker",
            {
                **MINIMAL,
                "K_SINK": "http://broker/",
                "VAUTH_API_URL": "authority",
                "ACCOUNT_MAX_NAME_LENGTH": "0",
                "ACCOUNT_RESERVED_WORDS": ",",
                "ACCOUNT_DOMAINS_BY_LOCALE": "en-us",
            },
        )
    problems = " | ".join(error.value.problems)
    for expected in (
        "VAUTH_API_URL='authority' is not an http(s) URL",
        "Exactly one of VAUTH_API_AUDIENCE and VAUTH_API_TOKEN",
        "ACCOUNT_MAX_NAME_LENGTH='0'",
        "ACCOUNT_RESERVED_WORDS=','",
        "ACCOUNT_DOMAINS_BY_LOCALE='en-us'",
    ):
        assert expected in problems
    with pytest.raises(ConfigError, match="Exactly one of"):
        load_settings(
            "ingress",
            {
                **MINIMAL,
                "VAUTH_API_URL": "http://a/",
                "VAUTH_API_AUDIENCE": "x",
                "VAUTH_API_TOKEN": "y",
            },
        )


PUBSUB_INGRESS = {**MINIMAL, "CE_TRANSPORT": "google-pubsub"}


def test_pubsub_push_authentication_is_off_by_default() -> None:
    push = load_settings("ingress", PUBSUB_INGRESS).pubsub_push
    assert push.audience is None
    assert push.service_accounts == ()
    assert push.certs_url == "https://www.googleapis.com/oauth2/v1/certs"


def test_pubsub_push_authentication_settings() -> None:
    push = load_settings(
        "ingress",
        {
            **PUBSUB_INGRESS,
            "PUBSUB_PUSH_AUDIENCE": "https://letro.example/",
            "PUBSUB_PUSH_SERVICE_ACCOUNTS": (
                " Pusher@P.iam.gserviceaccount.com, other@p.iam.gserviceaccount.com ,"
            ),
            "PUBSUB_PUSH_CERTS_URL": "http://127.0.0.1:9000/certs",
        },
    ).pubsub_push
    assert push.audience == "https://letro.example/"
    assert push.service_accounts == (
        "pusher@p.iam.gserviceaccount.com",
        "other@p.iam.gserviceaccount.com",
    )
    assert push.certs_url == "http://127.0.0.1:9000/certs"


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        (
            {"PUBSUB_PUSH_AUDIENCE": "https://letro.example/"},
            "PUBSUB_PUSH_AUDIENCE and PUBSUB_PUSH_SERVICE_ACCOUNTS must be set together",
        ),
        (
            {"PUBSUB_PUSH_SERVICE_ACCOUNTS": "pusher@p.iam.gserviceaccount.com"},
            "PUBSUB_PUSH_AUDIENCE and PUBSUB_PUSH_SERVICE_ACCOUNTS must be set together",
        ),
        (
            {"PUBSUB_PUSH_AUDIENCE": "aud", "PUBSUB_PUSH_SERVICE_ACCOUNTS": "pusher, x@y"},
            "PUBSUB_PUSH_SERVICE_ACCOUNTS='pusher, x@y' is not a comma-separated list of service",
        ),
        (
            {"PUBSUB_PUSH_AUDIENCE": "aud", "PUBSUB_PUSH_SERVICE_ACCOUNTS": " , "},
            "PUBSUB_PUSH_SERVICE_ACCOUNTS=',' is not a comma-separated list",
        ),
        (
            {
                "PUBSUB_PUSH_AUDIENCE": "aud",
                "PUBSUB_PUSH_SERVICE_ACCOUNTS": "a@b",
                "PUBSUB_PUSH_CERTS_URL": "file:///certs.json",
            },
            "PUBSUB_PUSH_CERTS_URL='file:///certs.json' is not an http(s) URL",
        ),
    ],
    ids=["audience alone", "accounts alone", "not an email", "empty list", "certs URL"],
)
def test_pubsub_push_authentication_problems(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings("ingress", {**PUBSUB_INGRESS, **env})
    assert problem in " | ".join(error.value.problems)


def test_pubsub_push_authentication_needs_the_pubsub_transport() -> None:
    # Set but unused would let an operator believe HTTP pushes are authenticated.
    with pytest.raises(ConfigError, match="need CE_TRANSPORT=google-pubsub"):
        load_settings(
            "ingress",
            {**MINIMAL, "PUBSUB_PUSH_AUDIENCE": "aud", "PUBSUB_PUSH_SERVICE_ACCOUNTS": "a@b"},
        )


@pytest.mark.parametrize("name", ["K_SINK", "VAUTH_API_URL", "PUBSUB_PUSH_CERTS_URL"])
def test_a_url_that_cannot_be_split_is_a_named_problem(name: str) -> None:
    # urlsplit raises on an unclosed IPv6 bracket: that must not escape as a crash.
    with pytest.raises(ConfigError) as error:
        load_settings("worker", {**MINIMAL, "K_SINK": "http://sink/", name: "http://[::1"})
    assert f"{name}='http://[::1' is not an http(s) URL" in error.value.problems


def test_choices_are_case_insensitive_and_named_lower_cased() -> None:
    settings = load_settings(
        "ingress", {**MINIMAL, "LOG_LEVEL": "WARNING", "CE_TRANSPORT": "Google-PubSub"}
    )
    assert (settings.log_level, settings.transport) == ("warning", Transport.GOOGLE_PUBSUB)
    with pytest.raises(ConfigError) as error:
        load_settings("ingress", {**MINIMAL, "LOG_FORMAT": "Pretty"})
    assert error.value.problems == ["LOG_FORMAT='pretty' must be one of json, console"]


def test_an_unparsable_transport_still_lets_the_other_rules_run() -> None:
    # The default transport is assumed, so the worker is also told what else it lacks.
    with pytest.raises(ConfigError) as error:
        load_settings("worker", {**MINIMAL, "CE_TRANSPORT": "kafka"})
    assert error.value.problems == [
        "CE_TRANSPORT='kafka' must be one of ce-http-binary, google-pubsub",
        "K_SINK is required when CE_TRANSPORT=ce-http-binary",
    ]


def test_each_value_reaches_its_own_field(tmp_path: Path) -> None:
    # Distinct values, so that two variables filling each other's fields would show.
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("cert")
    key.write_text("key")
    settings = load_settings(
        "worker",
        {
            **MINIMAL,
            "K_SINK": "http://sink/",
            "HOST": "127.0.0.2",
            "PORT": "8081",
            "MONGODB_DB": "db",
            "MONGODB_USER": "user",
            "MONGODB_PASSWORD": "password",
            "TEMPORAL_ADDRESS": "temporal:7233",
            "TEMPORAL_TASK_QUEUE": "queue",
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(key),
            "TEMPORAL_TLS": "off",
            "PAIRING_HISTORY_LIMIT_EVENTS": "77",
            "VAUTH_API_URL": "http://authority/",
            "VAUTH_API_TOKEN": "token",
        },
    )
    assert (settings.host, settings.port, settings.sink_url) == ("127.0.0.2", 8081, "http://sink/")
    mongodb = settings.mongodb
    assert (mongodb.uri, mongodb.database) == (MINIMAL["MONGODB_URI"], "db")
    assert (mongodb.user, mongodb.password) == ("user", "password")
    temporal = settings.temporal
    assert (temporal.address, temporal.task_queue, temporal.tls) == (
        "temporal:7233",
        "queue",
        False,
    )
    assert (temporal.tls_client_cert_path, temporal.tls_client_key_path) == (cert, key)
    assert settings.pairing_history_events == 77
    accounts = settings.accounts
    assert (accounts.vauth_api_url, accounts.vauth_api_token) == ("http://authority/", "token")
