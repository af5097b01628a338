"""The google-pubsub transport end to end, through the real Pub/Sub emulator.

Incoming: a push subscription on the endpoint's topic delivers envelopes to the ingress,
as in production. Outgoing: the worker publishes to the endpoint's outgoing topic, which
we read back with a pull subscription.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from google.cloud import pubsub_v1

from infra.agents import Agent, new_agent
from infra.services import PubSubEmulator
from letro.content_types import PAIRING_MATCH_TMP, PAIRING_REQUEST_TMP
from tests.conftest import StartIngress, StartWorker
from tests.helpers import SERVER_ENDPOINT_ID

pytestmark = pytest.mark.integration

PROJECT = "letro-test"


@dataclass
class PubSubStack:
    publisher: Any
    subscriber: Any
    incoming_topic: str
    outgoing_subscription: str


@pytest.fixture(scope="module")
def pubsub_stack(
    pubsub: PubSubEmulator, start_ingress: StartIngress, start_worker: StartWorker
) -> Iterator[PubSubStack]:
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = pubsub.host
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    incoming_topic = publisher.topic_path(PROJECT, "awala-incoming")
    outgoing_topic = publisher.topic_path(PROJECT, "awala-outgoing")
    outgoing_subscription = subscriber.subscription_path(PROJECT, "outgoing-check")
    publisher.create_topic(name=incoming_topic)
    publisher.create_topic(name=outgoing_topic)
    subscriber.create_subscription(name=outgoing_subscription, topic=outgoing_topic)

    env = {"CE_TRANSPORT": "google-pubsub", "PUBSUB_EMULATOR_HOST": pubsub.host}
    worker = start_worker("letro-pubsub", CE_GPUBSUB_TOPIC=outgoing_topic, **env)
    ingress = start_ingress(TEMPORAL_TASK_QUEUE=worker.task_queue, **env)
    subscriber.create_subscription(
        name=subscriber.subscription_path(PROJECT, "letro-incoming"),
        topic=incoming_topic,
        push_config={"push_endpoint": ingress.url},
    )
    yield PubSubStack(publisher, subscriber, incoming_topic, outgoing_subscription)
    publisher.stop()
    subscriber.close()
    if previous is None:
        del os.environ["PUBSUB_EMULATOR_HOST"]
    else:
        os.environ["PUBSUB_EMULATOR_HOST"] = previous


def publish_request(stack: PubSubStack, requester: Agent, target: Agent) -> None:
    # The attributes the Awala Internet Endpoint sets on incoming service messages.
    stack.publisher.publish(
        stack.incoming_topic,
        requester.legacy_pairing_request(target),
        specversion="1.0",
        id=str(uuid.uuid4()),
        type="tech.relaycorp.awala.endpoint-internet.incoming-service-message",
        source=requester.endpoint_id,
        subject=SERVER_ENDPOINT_ID,
        datacontenttype=PAIRING_REQUEST_TMP,
        time="2026-11-21T10:00:00.000Z",
        expiry="2027-02-21T10:00:00.000Z",
    ).result(timeout=10)


def pull_messages(stack: PubSubStack, count: int, timeout: float = 30) -> list[Any]:
    received: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        response = stack.subscriber.pull(
            subscription=stack.outgoing_subscription, max_messages=10, timeout=5
        )
        if response.received_messages:
            stack.subscriber.acknowledge(
                subscription=stack.outgoing_subscription,
                ack_ids=[m.ack_id for m in response.received_messages],
            )
        received.extend(m.message for m in response.received_messages)
    return received


async def test_pairing_over_pubsub_in_and_out(pubsub_stack: PubSubStack) -> None:
    alice, bob = new_agent("alice"), new_agent("bob")
    publish_request(pubsub_stack, alice, bob)
    publish_request(pubsub_stack, bob, alice)

    messages = await asyncio.to_thread(pull_messages, pubsub_stack, 2)

    by_recipient = {message.attributes["subject"]: message for message in messages}
    assert set(by_recipient) == {alice.endpoint_id, bob.endpoint_id}
    assert by_recipient[alice.endpoint_id].data == alice.expected_match_from(bob)
    assert by_recipient[bob.endpoint_id].data == bob.expected_match_from(alice)
    for message in messages:
        attributes = message.attributes
        assert (
            attributes["type"] == "tech.relaycorp.awala.endpoint-internet.outgoing-service-message"
        )
        assert attributes["specversion"] == "1.0"
        assert attributes["source"] == SERVER_ENDPOINT_ID
        assert attributes["datacontenttype"] == PAIRING_MATCH_TMP
        assert attributes["id"]
        assert attributes["time"].endswith("Z")
        assert attributes["expiry"] > attributes["time"]
