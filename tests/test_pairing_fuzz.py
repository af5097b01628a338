"""No input crashes the pairing handlers: parsers, the request checks, the ingress.

Inputs are arbitrary bytes and, more usefully, valid messages with a few bytes changed,
inserted or cut, which reach much deeper into the parsers than random bytes do.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import Client

import veraid
from awala.private_endpoint_conn_params import (
    ConnectionParamsRouting,
    InvalidPrivateEndpointConnParams,
    _PrivateEndpointConnParams,
    read_connection_params,
)
from awala.service_messages import IncomingServiceMessage
from contract.pairing import ContactPairingRefusalOutcome, PairingStatus
from infra.agents import (
    VeraidOrg,
    connection_params,
    endpoint_id,
    make_org,
    new_rsa_key,
    new_veraid_agent,
)
from ingress.routing import Ignore, RoutingOptions, SignalWithStart, StartOnce, route
from letro.contact_pairing import (
    PairingDrop,
    PairingRefusal,
    VerifiedPairingRequest,
    check_contact_pairing_request,
)
from letro.content_types import (
    CONTACT_PAIRING_AUTHORISATION,
    CONTACT_PAIRING_REQUEST,
    PAIRING_AUTH,
    PAIRING_AUTH_TMP,
)
from tests.conftest import Ingress, Worker
from tests.helpers import SERVER_ENDPOINT_ID, binary_event_headers, one_shot_outcome

_GRANTER, _GRANTEE = new_rsa_key(), new_rsa_key()
VALID_PARAMS = connection_params(_GRANTER, _GRANTEE)


def mutate(
    data: bytes, rng: random.Random, edits: int = 3, within: tuple[int, int] | None = None
) -> bytes:
    """``data`` with ``edits`` octets changed, inserted or cut (only ``within`` a span if given)."""
    buffer = bytearray(data)
    start, end = within or (0, len(data))
    for _ in range(edits):
        position = rng.randrange(start, min(end, len(buffer)) + 1)
        action = rng.randrange(3)
        if action == 0 and position < len(buffer):
            buffer[position] = rng.randrange(256)
        elif action == 1:
            buffer[position:position] = bytes([rng.randrange(256)])
        else:
            del buffer[position : position + rng.randrange(1, 8)]
    return bytes(buffer)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes, within: tuple[int, int] | None = None) -> bytes:
    rng = random.Random(draw(st.integers(0, 2**32)))
    return mutate(valid, rng, draw(st.integers(1, 4)), within)


def _pda_span(params: bytes) -> tuple[int, int]:
    """Where the PDA is in ``params``: mutations there reach the granter checks."""
    pda = _PrivateEndpointConnParams.load(params)["delivery_auth"]["leaf"].dump()
    start = params.index(pda)
    return start, start + len(pda)


def _connection_params_inputs(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), mutated(valid), mutated(valid, _pda_span(valid)))


FORGED_PARAMS = connection_params(_GRANTER, _GRANTEE, signer=new_rsa_key())
GENUINE_ROUTING = ConnectionParamsRouting(endpoint_id(_GRANTER), endpoint_id(_GRANTEE))


@settings(max_examples=200, deadline=None)
@given(_connection_params_inputs(VALID_PARAMS))
def test_connection_params_parser_raises_only_its_error(data: bytes) -> None:
    try:
        routing = read_connection_params(data)
    except InvalidPrivateEndpointConnParams:
        return
    # What survives a mutation (the address, the CAs...) still proves the same granter.
    assert routing == GENUINE_ROUTING


@settings(max_examples=100, deadline=None)
@given(_connection_params_inputs(FORGED_PARAMS))
def test_no_mutation_of_a_forgery_proves_a_granter(data: bytes) -> None:
    with pytest.raises(InvalidPrivateEndpointConnParams):
        read_connection_params(data)


@pytest.fixture(scope="module")
def fuzz_org() -> VeraidOrg:
    return make_org()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_request_checks_always_return_a_verdict(fuzz_org: VeraidOrg, data: st.DataObject) -> None:
    agent = new_veraid_agent(fuzz_org, "alice")
    valid = agent.pairing_request("bob@tickety.boo")
    bundle = data.draw(st.one_of(st.binary(max_size=200), mutated(valid)))
    verdict = check_contact_pairing_request(
        bundle, agent.endpoint_id, datetime.now(UTC), trust_anchors=[fuzz_org.chain.trust_anchor]
    )
    assert isinstance(verdict, VerifiedPairingRequest | PairingRefusal | PairingDrop)
    if isinstance(verdict, VerifiedPairingRequest):
        # Only a bundle that verified can be matched, and it is forwarded as it came.
        assert verdict.signature_bundle == bundle


@pytest.mark.integration
@pytest.mark.parametrize(
    "content_type",
    [CONTACT_PAIRING_REQUEST, PAIRING_AUTH, CONTACT_PAIRING_AUTHORISATION, PAIRING_AUTH_TMP],
)
async def test_ingress_and_workflows_handle_every_input(
    http: httpx.AsyncClient,
    ingress: Ingress,
    http_worker: Worker,
    temporal_client: Client,
    veraid_org: VeraidOrg,
    content_type: str,
) -> None:
    rng = random.Random(content_type)
    agent = new_veraid_agent(veraid_org, "fuzz")
    valid = (
        agent.pairing_request("bob@tickety.boo")
        if content_type == CONTACT_PAIRING_REQUEST
        else VALID_PARAMS
    )
    bodies = [mutate(valid, rng, rng.randrange(1, 5)) for _ in range(20)]
    bodies += [rng.randbytes(rng.randrange(1, 64)) for _ in range(5)]
    parcel_ids = [f"fuzz-{uuid.uuid4()}" for _ in bodies]
    responses = await asyncio.gather(
        *(
            http.post(
                ingress.url,
                headers=binary_event_headers(
                    sender_id=agent.endpoint_id, content_type=content_type, parcel_id=parcel_id
                ),
                content=body,
            )
            for body, parcel_id in zip(bodies, parcel_ids, strict=True)
        )
    )
    assert [response.status_code for response in responses] == [204] * len(bodies)

    if content_type == CONTACT_PAIRING_REQUEST:
        await _every_request_handled(
            temporal_client,
            agent.endpoint_id,
            bodies,
            parcel_ids,
            (veraid_org.chain.trust_anchor,),
        )
    # No workflow task failed (a crash in workflow code would show here, and retry forever).
    assert "Failed handling activation" not in http_worker.log_file.read_text()


async def _every_request_handled(
    client: Client,
    sender_id: str,
    bodies: list[bytes],
    parcel_ids: list[str],
    trust_anchors: tuple[veraid.TrustAnchor, ...],
) -> None:
    """Wait for each request's workflow (as the pure router chose it) to have handled it."""
    options = RoutingOptions(
        pairing_request_ttl=timedelta(days=90), veraid_trust_anchors=trust_anchors
    )
    signals_per_pair: Counter[str] = Counter()
    async with asyncio.timeout(60):
        for body, parcel_id in zip(bodies, parcel_ids, strict=True):
            message = IncomingServiceMessage(
                parcel_id, sender_id, SERVER_ENDPOINT_ID, CONTACT_PAIRING_REQUEST, body
            )
            decision = route(message, options, datetime.now(UTC))
            if isinstance(decision, Ignore):
                continue  # nothing reached Temporal
            if isinstance(decision, SignalWithStart):
                signals_per_pair[decision.workflow_id] += 1
                continue
            assert isinstance(decision, StartOnce)
            outcome = await one_shot_outcome(
                client, decision.workflow_id, ContactPairingRefusalOutcome
            )
            assert outcome.reason
        for workflow_id, count in signals_per_pair.items():
            handle = client.get_workflow_handle(workflow_id)
            while True:
                status = await handle.query("status", result_type=PairingStatus)
                if status.requests_handled + status.redeliveries_ignored == count:
                    break
                await asyncio.sleep(0.1)
