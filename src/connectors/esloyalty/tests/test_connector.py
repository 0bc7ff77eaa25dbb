"""The ES Loyalty connector: each inbound event one Standard Webhooks request, verifiable with the
shared secret by any Standard Webhooks library; its outcomes; the kit's contract."""

from __future__ import annotations

import json
import time
from typing import Any

from standardwebhooks.webhooks import Webhook

from connectors.esloyalty import client
from connectors.esloyalty.local import LOCAL_DOUBLE, SECRET
from connectors.esloyalty.manifest import MANIFEST
from connectors.esloyalty.tests.harness import harness
from dig_connector_kit.model import Result
from dig_connector_kit.testing import ConnectorContract, Fault, inbound
from dig_contracts.inbound import InboundEventType, example_inbound


def test_an_inbound_event_is_one_signed_webhook_whose_body_is_the_event() -> None:
    h = harness()
    event = example_inbound("MEMBER_CONSENT_CHANGED")
    message = inbound(event)
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    [received] = h.simulator.received
    assert received["verified"] is True
    assert json.loads(received["body"]) == event
    headers = received["headers"]
    assert headers["webhook-id"] == message.message_id
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    # What ES Loyalty does with any Standard Webhooks library: the same secret verifies it.
    assert Webhook(SECRET["secret"]).verify(received["body"].encode(), headers) == event


def test_es_loyalty_refusing_the_signature_is_failed_at_once_and_replayable() -> None:
    h = harness(secret="whsec_" + "d3Jvbmcgc2VjcmV0")
    message = inbound(example_inbound("POINTS_AWARD_REQUESTED"))
    outcome = h.deliver(message)[message.message_id]
    assert (outcome.result, outcome.error) == (Result.FAILED, "webhook: 401 the signature does not verify")
    assert [r["verified"] for r in h.simulator.received] == [False]


def test_es_loyalty_down_is_retried_always_with_the_same_webhook_id() -> None:
    h = harness()
    h.simulator.set_fault(Fault.from_document({"status": 503}))
    message = inbound(example_inbound("PAYOUT_STATUS_CHANGED"))
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.RETRY  # back to the queue: the next receive tries again
    assert [a.status for a in outcome.attempts] == ["503"] * 4
    h.simulator.set_fault(None)
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    attempts = h.simulator.logged(client.WEBHOOK_CALL)
    assert [r["headers"]["webhook-id"] for r in attempts] == [message.message_id] * 5
    [received] = h.simulator.received  # the faults answered before the double received anything
    assert received["headers"]["webhook-id"] == message.message_id


def test_each_message_of_a_batch_is_its_own_request() -> None:
    h = harness()
    messages = [inbound(example_inbound(t.value)) for t in InboundEventType]
    outcomes = h.deliver(*messages)
    assert {o.result for o in outcomes.values()} == {Result.DELIVERED}
    assert [r["headers"]["webhook-id"] for r in h.simulator.received] == [m.message_id for m in messages]


def test_the_local_double_records_and_clears_what_it_received() -> None:
    double: Any = LOCAL_DOUBLE.make({})
    answer = double.handle("POST", "/webhooks", {"webhook-id": "x"}, b"{}")
    assert answer.status == 401  # no signature
    assert double.handle("GET", "/received", {}, b"").body == [
        {"headers": {"webhook-id": "x"}, "body": "{}", "verified": False}
    ]
    assert double.handle("DELETE", "/received", {}, b"").status == 204
    assert double.handle("GET", "/received", {}, b"").body == []


def test_the_esloyalty_connector_keeps_the_connector_contract() -> None:
    events = [example_inbound(t.value) for t in MANIFEST.event_types]
    ConnectorContract(lambda: harness().connector, events, MANIFEST).check()
