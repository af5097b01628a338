"""Account requests built and signed by Node (RSA-PSS keys with SPKI parameters, as Letro for
Android sends them) are accepted."""

from __future__ import annotations

import pytest
from asn1crypto import keys

from letro.account_messages import parse_account_request, verify_account_request
from tests.node_account_requests import INTEROP_DIR, node_account_request
from tests.test_cloudevents_interop import requires_node


@pytest.fixture(scope="module")
def node() -> str:
    return requires_node(INTEROP_DIR)  # Node's own crypto: no npm package needed


@pytest.mark.parametrize(
    ("hash_name", "modulus_length"), [("sha256", 2048), ("sha384", 3072), ("sha512", 4096)]
)
def test_node_rsa_pss_request_is_accepted(node: str, hash_name: str, modulus_length: int) -> None:
    data, spki = node_account_request(node, "maría", "es-ve", hash_name, modulus_length)
    parsed = parse_account_request(data)
    assert (parsed.user_name, parsed.locale) == ("maría", "es-ve")
    assert parsed.public_key_der == spki
    algorithm = keys.PublicKeyInfo.load(spki)["algorithm"]
    assert algorithm["algorithm"].native == "rsassa_pss"
    assert algorithm["parameters"]["hash_algorithm"]["algorithm"].native == hash_name
    verify_account_request(parsed)
