"""The payload keys and the codec server's settings: validated at start-up, never echoed."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, load_codec_server_settings, load_settings
from infra.processes import REPO_ROOT
from payload_codec import PayloadKey, PayloadKeyring

MINIMAL = {"VERSION": "1.2.3", "MONGODB_URI": "mongodb://localhost/letro"}
SECRET_A = bytes(range(32))
SECRET_B = bytes(range(100, 132))
A = base64.b64encode(SECRET_A).decode()
B = base64.b64encode(SECRET_B).decode()
SHORT = base64.b64encode(b"sixteen byte key").decode()


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings("ingress", {**MINIMAL, **environ})
    return str(raised.value)


def test_without_keys_nothing_is_encrypted() -> None:
    assert load_settings("ingress", MINIMAL).temporal.payload_keys is None


def test_keys_from_the_environment() -> None:
    settings = load_settings(
        "ingress",
        {
            **MINIMAL,
            "TEMPORAL_PAYLOAD_KEYS": f"2026-01:{A}, 2026-11:{B}",
            "TEMPORAL_PAYLOAD_ACTIVE_KEY": "2026-11",
        },
    )
    assert settings.temporal.payload_keys == PayloadKeyring(
        (PayloadKey("2026-01", SECRET_A), PayloadKey("2026-11", SECRET_B)), "2026-11"
    )


def test_keys_from_a_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# retired in 2027\nold {A}\n\n  new\t{B}  \n")
    settings = load_settings(
        "worker",
        {
            **MINIMAL,
            "K_SINK": "http://sink/",
            "TEMPORAL_PAYLOAD_KEYS_FILE": str(keys),
            "TEMPORAL_PAYLOAD_ACTIVE_KEY": "old",
        },
    )
    keyring = settings.temporal.payload_keys
    assert keyring is not None
    assert keyring.key_ids == ("old", "new")
    assert keyring.active_key_id == "old"


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (f"a:{SHORT}", "item 1: key 'a' is 16 bytes, not 32 (AES-256)"),
        (f"a:{A},b:{SHORT}", "item 2: key 'b' is 16 bytes, not 32"),
        (f"a:{A[:-2]}", "item 1: the key is not base64"),
        ("a:not base64!", "item 1: the key is not base64"),
        (A, "item 1 is not <id>:<base64 key>"),
        (f"a:{A},a:{B}", "key ids given twice: a"),
        (f"bad id:{A}", "item 1: a key id must be"),
    ],
)
def test_malformed_keys_are_explained_without_showing_them(value: str, detail: str) -> None:
    problem = refusal({"TEMPORAL_PAYLOAD_KEYS": value, "TEMPORAL_PAYLOAD_ACTIVE_KEY": "a"})
    complaint = "is not a comma-separated list of <id>:<base64 32-byte key>"
    assert f"TEMPORAL_PAYLOAD_KEYS {complaint}: {detail}" in problem
    for secret in (A, A[:-2], SHORT, B, "not base64!"):
        assert secret not in problem


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (f"a {SHORT}\n", "line 1: key 'a' is 16 bytes, not 32"),
        (f"# keys\na {A}\nb\n", "line 3 is not '<id> <base64 key>'"),
        (f"a {A} extra\n", "line 1 is not '<id> <base64 key>'"),
        ("# only comments\n\n", "it holds no key"),
        (f"a {A}\na {B}\n", "key ids given twice: a"),
    ],
)
def test_a_malformed_key_file_names_the_line(tmp_path: Path, content: str, detail: str) -> None:
    keys = tmp_path / "keys"
    keys.write_text(content)
    problem = refusal({"TEMPORAL_PAYLOAD_KEYS_FILE": str(keys), "TEMPORAL_PAYLOAD_ACTIVE_KEY": "a"})
    assert f"is not a file of '<id> <base64 32-byte key>' lines: {detail}" in problem
    assert A not in problem
    assert SHORT not in problem


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    problem = refusal(
        {"TEMPORAL_PAYLOAD_KEYS_FILE": str(missing), "TEMPORAL_PAYLOAD_ACTIVE_KEY": "a"}
    )
    assert f"TEMPORAL_PAYLOAD_KEYS_FILE={str(missing)!r}" in problem
    assert "cannot be read (FileNotFoundError)" in problem


def test_keys_need_an_active_key_among_them() -> None:
    assert "TEMPORAL_PAYLOAD_ACTIVE_KEY is required with TEMPORAL_PAYLOAD_KEYS" in refusal(
        {"TEMPORAL_PAYLOAD_KEYS": f"a:{A}"}
    )
    assert "TEMPORAL_PAYLOAD_ACTIVE_KEY='b' is not one of the keys: a" in refusal(
        {"TEMPORAL_PAYLOAD_KEYS": f"a:{A}", "TEMPORAL_PAYLOAD_ACTIVE_KEY": "b"}
    )
    assert "TEMPORAL_PAYLOAD_ACTIVE_KEY='a:b' is not a key id" in refusal(
        {"TEMPORAL_PAYLOAD_KEYS": f"a:{A}", "TEMPORAL_PAYLOAD_ACTIVE_KEY": "a:b"}
    )


def test_an_active_key_without_keys_is_refused() -> None:
    # Not ignored: the operator believes payloads are encrypted.
    assert "TEMPORAL_PAYLOAD_ACTIVE_KEY needs TEMPORAL_PAYLOAD_KEYS" in refusal(
        {"TEMPORAL_PAYLOAD_ACTIVE_KEY": "a"}
    )


def test_keys_come_from_one_place_only(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"a {A}\n")
    problem = refusal(
        {
            "TEMPORAL_PAYLOAD_KEYS": f"a:{A}",
            "TEMPORAL_PAYLOAD_KEYS_FILE": str(keys),
            "TEMPORAL_PAYLOAD_ACTIVE_KEY": "a",
        }
    )
    assert "Set only one of TEMPORAL_PAYLOAD_KEYS and TEMPORAL_PAYLOAD_KEYS_FILE" in problem


@pytest.mark.parametrize("command", [["-m", "ingress"], ["worker.py"], ["-m", "codec_server"]])
def test_processes_refuse_to_start_with_a_short_key(command: list[str]) -> None:
    env = {
        **MINIMAL,
        "K_SINK": "http://sink/",
        "TEMPORAL_PAYLOAD_KEYS": f"a:{SHORT}",
        "TEMPORAL_PAYLOAD_ACTIVE_KEY": "a",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, *command], cwd=REPO_ROOT, env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    assert b"key 'a' is 16 bytes, not 32" in result.stderr
    assert SHORT.encode() not in result.stderr


def test_codec_server_defaults() -> None:
    settings = load_codec_server_settings(
        {"TEMPORAL_PAYLOAD_KEYS": f"a:{A}", "TEMPORAL_PAYLOAD_ACTIVE_KEY": "a"}
    )
    assert (settings.host, settings.port) == ("127.0.0.1", 8234)
    assert settings.cors_origins == ("http://localhost:8233", "http://127.0.0.1:8233")
    assert settings.token is None
    assert settings.payload_keys.key_ids == ("a",)


def test_codec_server_settings() -> None:
    settings = load_codec_server_settings(
        {
            "TEMPORAL_PAYLOAD_KEYS": f"a:{A}",
            "TEMPORAL_PAYLOAD_ACTIVE_KEY": "a",
            "CODEC_SERVER_HOST": "0.0.0.0",
            "CODEC_SERVER_PORT": "9000",
            "CODEC_SERVER_CORS_ORIGINS": "https://temporal.example.com, http://[::1]:8233",
            "CODEC_SERVER_TOKEN": "s3cret",
        }
    )
    assert (settings.host, settings.port, settings.token) == ("0.0.0.0", 9000, "s3cret")
    assert settings.cors_origins == ("https://temporal.example.com", "http://[::1]:8233")


def test_the_codec_server_needs_keys_and_nothing_else() -> None:
    # No VERSION, MONGODB_URI...: it talks to neither MongoDB nor Temporal.
    with pytest.raises(ConfigError) as raised:
        load_codec_server_settings({})
    assert raised.value.problems == [
        "TEMPORAL_PAYLOAD_KEYS or TEMPORAL_PAYLOAD_KEYS_FILE is required by the codec server"
    ]


@pytest.mark.parametrize(
    "origins",
    [
        "*",
        "localhost:8233",
        "http://ui.example.com/",
        "http://ui.example.com/path",
        "ftp://ui",
        ",",
    ],
)
def test_codec_server_origins_are_plain_origins(origins: str) -> None:
    with pytest.raises(ConfigError, match=r"CODEC_SERVER_CORS_ORIGINS=.* is not a comma-separated"):
        load_codec_server_settings(
            {
                "TEMPORAL_PAYLOAD_KEYS": f"a:{A}",
                "TEMPORAL_PAYLOAD_ACTIVE_KEY": "a",
                "CODEC_SERVER_CORS_ORIGINS": origins,
            }
        )
