"""How the processes reach Temporal: the SDK's client configuration, with our settings beneath."""

from __future__ import annotations

from pathlib import Path

from temporalio.service import TLSConfig

from config import load_settings
from connections import temporal_connect_options

BASE = {"VERSION": "test", "MONGODB_URI": "mongodb://db", "K_SINK": "http://sink"}


def _options(environ: dict[str, str]) -> dict[str, object]:
    env = {**BASE, **environ}
    return temporal_connect_options(load_settings("worker", env).temporal, env)


def test_defaults_are_a_local_server_without_tls() -> None:
    options = _options({})
    assert options["target_host"] == "localhost:7233"
    assert options["namespace"] == "default"
    assert options["tls"] is False


def test_our_variables_reach_the_client() -> None:
    options = _options(
        {"TEMPORAL_ADDRESS": "ns.acct.tmprl.cloud:7233", "TEMPORAL_NAMESPACE": "ns.acct",
         "TEMPORAL_API_KEY": "secret"}
    )  # fmt: skip
    assert options["target_host"] == "ns.acct.tmprl.cloud:7233"
    assert options["namespace"] == "ns.acct"
    assert options["api_key"] == "secret"
    assert options["tls"] is True  # an API key means a hosted cluster, which speaks TLS


def test_server_ca_and_server_name_come_from_the_sdk_configuration(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    options = _options(
        {
            "TEMPORAL_ADDRESS": "temporal.internal:7233",
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(ca),
            "TEMPORAL_TLS_SERVER_NAME": "temporal.example",
        }
    )
    tls = options["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == ca.read_bytes()
    assert tls.domain == "temporal.example"


def test_client_certificates_are_read_for_mtls(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"cert")
    key.write_bytes(b"key")
    options = _options(
        {"TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert), "TEMPORAL_TLS_CLIENT_KEY_PATH": str(key)}
    )
    tls = options["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key) == (b"cert", b"key")


def test_a_profile_file_is_used_and_our_variables_override_it(tmp_path: Path) -> None:
    profiles = tmp_path / "temporal.toml"
    profiles.write_text(
        '[profile.prod]\naddress = "prod.example:7233"\nnamespace = "letro-prod"\n'
        'api_key = "from-file"\n'
    )
    env = {"TEMPORAL_CONFIG_FILE": str(profiles), "TEMPORAL_PROFILE": "prod"}

    from_file = _options(env)
    overridden = _options({**env, "TEMPORAL_NAMESPACE": "letro-staging"})

    assert (from_file["target_host"], from_file["namespace"]) == ("prod.example:7233", "letro-prod")
    assert from_file["api_key"] == "from-file"
    assert overridden["namespace"] == "letro-staging"
