"""Pairing authorisations checked by the ingress, forwarded by a workflow."""

from __future__ import annotations

import asyncio
import base64
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from temporalio.client import Client
from temporalio.service import RPCError

from awala.private_endpoint_conn_params import _PrivateEndpointConnParams
from infra.agents import connection_params, endpoint_id, new_rsa_key
from letro.content_types import (
    CONTACT_PAIRING_AUTHORISATION,
    PAIRING_AUTH,
    PAIRING_AUTH_TMP,
    PAIRING_COMPLETION_TMP,
)
from tests.conftest import Ingress, Sink
from tests.helpers import SERVER_ENDPOINT_ID, binary_event_headers
from workflows import forwarding

pytestmark = pytest.mark.integration

TIMEOUT = 20.0


async def post(
    http: httpx.AsyncClient,
    url: str,
    sender_id: str,
    content_type: str,
    content: bytes,
    parcel_id: str | None = None,
) -> None:
    headers = binary_event_headers(
        sender_id=sender_id, content_type=content_type, parcel_id=parcel_id
    )
    response = await http.post(url, headers=headers, content=content)
    assert response.status_code == 204, response.text


@pytest.mark.parametrize("content_type", [PAIRING_AUTH, CONTACT_PAIRING_AUTHORISATION])
async def test_authorisation_is_forwarded_to_the_grantee_as_is(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink, content_type: str
) -> None:
    granter, grantee = new_rsa_key(), new_rsa_key()
    params = connection_params(granter, grantee)

    await post(http, ingress.url, endpoint_id(granter), content_type, params)
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(endpoint_id(grantee))), TIMEOUT)

    [forwarded] = sink.recorder.to(endpoint_id(grantee))
    assert (forwarded.content_type, forwarded.data) == (content_type, params)
    assert forwarded.source == SERVER_ENDPOINT_ID
    assert sink.recorder.to(endpoint_id(granter)) == []


async def test_legacy_authorisation_becomes_a_completion(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink
) -> None:
    granter, grantee = new_rsa_key(), new_rsa_key()
    params = connection_params(granter, grantee)

    await post(http, ingress.url, endpoint_id(granter), PAIRING_AUTH_TMP, params)
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(endpoint_id(grantee))), TIMEOUT)

    [completion] = sink.recorder.to(endpoint_id(grantee))
    assert completion.content_type == PAIRING_COMPLETION_TMP
    assert completion.data == f"{endpoint_id(granter)},".encode() + base64.b64encode(params)


async def test_redelivered_authorisation_is_forwarded_once(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink
) -> None:
    granter, grantee = new_rsa_key(), new_rsa_key()
    params = connection_params(granter, grantee)
    for _ in range(2):
        await post(http, ingress.url, endpoint_id(granter), PAIRING_AUTH, params, "auth-parcel")
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(endpoint_id(grantee))), TIMEOUT)
    await post(http, ingress.url, endpoint_id(granter), PAIRING_AUTH, params, "auth-parcel")
    await asyncio.sleep(1)
    assert len(sink.recorder.to(endpoint_id(grantee))) == 1


@pytest.mark.parametrize("content_type", [PAIRING_AUTH, PAIRING_AUTH_TMP])
async def test_authorisation_not_issued_by_its_sender_is_dropped(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink, content_type: str
) -> None:
    granter, grantee, mallory = new_rsa_key(), new_rsa_key(), new_rsa_key()
    params = connection_params(granter, grantee)

    await post(http, ingress.url, endpoint_id(mallory), content_type, params)
    await asyncio.sleep(1)
    assert sink.recorder.to(endpoint_id(grantee)) == []


@pytest.mark.parametrize("content_type", [PAIRING_AUTH, PAIRING_AUTH_TMP])
async def test_authorisation_signed_by_another_key_is_dropped(
    http: httpx.AsyncClient,
    ingress: Ingress,
    sink: Sink,
    temporal_client: Client,
    content_type: str,
) -> None:
    # Mallory's PDA claims the granter's authority and comes from the granter's endpoint id:
    # only its signature gives it away.
    granter, grantee, mallory = new_rsa_key(), new_rsa_key(), new_rsa_key()
    forged = connection_params(granter, grantee, signer=mallory)
    genuine = connection_params(granter, grantee)
    forged_parcel = f"forged-{uuid.uuid4()}"

    await post(http, ingress.url, endpoint_id(granter), content_type, forged, forged_parcel)
    await post(http, ingress.url, endpoint_id(granter), content_type, genuine)
    await sink.recorder.wait_for(lambda _: bool(sink.recorder.to(endpoint_id(grantee))), TIMEOUT)

    [received] = sink.recorder.to(endpoint_id(grantee))
    if content_type == PAIRING_AUTH_TMP:
        assert received.data == f"{endpoint_id(granter)},".encode() + base64.b64encode(genuine)
    else:
        assert received.data == genuine
    # The ingress decides before its 204, so a forgery it let through would have a workflow.
    forged_workflow = forwarding.workflow_id_for(endpoint_id(granter), forged_parcel)
    with pytest.raises(RPCError, match="not found"):
        await temporal_client.get_workflow_handle(forged_workflow).describe()
    assert ingress.process.log_file is not None
    assert "The PDA is not signed by the identity key" in ingress.process.log_file.read_text()


def _without_pda(valid: bytes) -> bytes:
    params = _PrivateEndpointConnParams.load(valid)
    body: bytes = params["identity_key"].dump() + params["internet_gateway_address"].dump()
    return b"\x30\x82" + len(body).to_bytes(2, "big") + body


def _malformed() -> dict[str, bytes]:
    granter, grantee = new_rsa_key(), new_rsa_key()
    valid = connection_params(granter, grantee)
    return {
        "no PDA": _without_pda(valid),
        "not DER": b"\x30\x03\x02\x01",
        "empty": b"",
        "trailing bytes": valid + b"\x00",
        "truncated": valid[:-10],
        "non-RSA identity key": connection_params(
            granter, grantee, identity_key=ec.generate_private_key(ec.SECP256R1())
        ),
        "PDA without authority key id": connection_params(granter, grantee, authority_key_id=False),
    }


MALFORMED = _malformed()


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_params_are_dropped(
    http: httpx.AsyncClient, ingress: Ingress, sink: Sink, content: bytes
) -> None:
    before = len(sink.recorder.events)
    await post(http, ingress.url, endpoint_id(new_rsa_key()), PAIRING_AUTH, content)
    await asyncio.sleep(0.5)
    assert sink.recorder.events[before:] == []
