"""The return path through the shared local stack: what providers say reaches ES Loyalty's double as
signed Standard Webhooks, once; a webhook that does not verify is refused and keeps nothing; ES Loyalty
refusing for a while ends DELIVERED with one webhook-id."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from dig_contracts.examples import example_event
from tests.e2e.conftest import LocalStackProcess, delivery

MARKETO_HOOK = "/v1/inbound/marketo/unsubscribes"


@pytest.fixture
def es_loyalty(local_stack: LocalStackProcess) -> Iterator[dict[str, Any]]:
    yield local_stack.http.get("/_local/stack").json()
    local_stack.http.delete("/_sim/esloyalty/faults")


def received_for(stack: LocalStackProcess, member: str) -> list[dict[str, Any]]:
    return [r for r in stack.http.get("/_sim/esloyalty/received").json() if json.loads(r["body"])["memberId"] == member]


def test_an_optimove_unsubscribe_reaches_es_loyalty_once_as_a_signed_consent_change(
    local_stack: LocalStackProcess, es_loyalty: dict[str, Any]
) -> None:
    member = local_stack.existing_member()
    email = f"{member.lower()}@example.com"
    registration = example_event("MEMBER_REGISTRATION", eventId=f"reg-{member}", memberId=member)
    registration["data"]["email"] = email  # DIG learns the member's address from ES Loyalty's event
    answer = local_stack.post_event(registration)
    assert answer.status_code == 202
    local_stack.wait_for_final(answer.json()["messageId"])

    assert (
        local_stack.http.post(
            "/_sim/optimove/unsubscribers", json={"emails": [email.upper()], "brandId": 7}
        ).status_code
        == 204
    )
    run = local_stack.http.post("/_local/jobs/optimove/unsubscribes", json={}).json()
    assert run["events"] == 1
    [webhook] = local_stack.wait_until(lambda: received_for(local_stack, member), "ES Loyalty received the unsubscribe")
    assert webhook["verified"] is True
    # Verifiable by ES Loyalty with any Standard Webhooks library and the shared secret.
    event = Webhook(es_loyalty["esLoyaltyWebhookSecret"]).verify(webhook["body"].encode(), webhook["headers"])
    assert (event["eventType"], event["memberId"], event["data"]) == (
        "MEMBER_CONSENT_CHANGED",
        member,
        {"channel": "EMAIL", "consent": "OPTED_OUT", "reason": "UNSUBSCRIBE"},
    )
    record = local_stack.wait_for_final(webhook["headers"]["webhook-id"])
    assert (record["client"], delivery(record, "esloyalty")["status"]) == ("optimove/unsubscribes", "DELIVERED")

    again = local_stack.http.post("/_local/jobs/optimove/unsubscribes", json={}).json()
    assert again["events"] == 0
    assert again["duplicates"] >= 1
    # ES Loyalty may also pull it: the same envelope, by the same id.
    listed = local_stack.wait_until(
        lambda: [e for e in _all_inbound(local_stack) if e["id"] == webhook["headers"]["webhook-id"]],
        "the inbound event listed by GET /v1/inbound-events",
    )
    assert listed[0]["event"] == event
    assert len(received_for(local_stack, member)) == 1


def _all_inbound(stack: LocalStackProcess) -> list[dict[str, Any]]:
    events, cursor = [], None
    while True:
        page = stack.http.get(
            "/v1/inbound-events", params={"limit": 200, **({"after": cursor} if cursor else {})}
        ).json()
        events += page["events"]
        if not page["events"]:
            return events
        cursor = page["nextCursor"]


def test_a_webhook_is_verified_before_anything_is_kept_and_the_same_one_twice_is_one_event(
    local_stack: LocalStackProcess, es_loyalty: dict[str, Any]
) -> None:
    token = es_loyalty["webhookSecrets"]["marketo/unsubscribes"]
    member, lead = f"M-{uuid.uuid4().hex[:10]}", str(uuid.uuid4().int % 10**8)
    body = {"leadId": lead, "memberId": member, "unsubscribed": True}
    forged = local_stack.http.post(
        MARKETO_HOOK, json=body, headers={"X-DIG-Webhook-Token": "guess", "Authorization": ""}
    )
    assert (forged.status_code, forged.json()["error"]["code"]) == (403, "FORBIDDEN")
    missing = local_stack.http.post(MARKETO_HOOK, json=body, headers={"Authorization": ""})
    assert missing.status_code == 401
    for _ in range(2):  # Marketo sends it twice
        sent = local_stack.http.post(
            MARKETO_HOOK, json=body, headers={"X-DIG-Webhook-Token": token, "Authorization": ""}
        )
        assert sent.status_code == 202
    local_stack.wait_until(lambda: received_for(local_stack, member), "ES Loyalty received the webhook's event")
    # A later webhook delivered means the second copy was read before it (the connector's queue is in order here).
    later = f"M-{uuid.uuid4().hex[:10]}"
    local_stack.http.post(
        MARKETO_HOOK,
        json={**body, "memberId": later, "leadId": "1"},
        headers={"X-DIG-Webhook-Token": token, "Authorization": ""},
    )
    local_stack.wait_until(lambda: received_for(local_stack, later), "the later webhook's event")
    assert len(received_for(local_stack, member)) == 1


def test_es_loyalty_refusing_for_a_while_ends_delivered_with_one_webhook_id(
    local_stack: LocalStackProcess, es_loyalty: dict[str, Any]
) -> None:
    token = es_loyalty["webhookSecrets"]["marketo/unsubscribes"]
    member = f"M-{uuid.uuid4().hex[:10]}"
    # Down for six attempts: the first receive's four tries, and two of the next.
    assert local_stack.http.post("/_sim/esloyalty/faults", json={"status": 503, "times": 6}).status_code == 204
    body = {"leadId": "42", "memberId": member, "unsubscribed": "false"}
    assert (
        local_stack.http.post(
            MARKETO_HOOK, json=body, headers={"X-DIG-Webhook-Token": token, "Authorization": ""}
        ).status_code
        == 202
    )
    [webhook] = local_stack.wait_until(
        lambda: received_for(local_stack, member), "delivered once ES Loyalty recovered", timeout=120
    )
    message_id = webhook["headers"]["webhook-id"]
    record = local_stack.wait_for_final(message_id)
    outcome = delivery(record, "esloyalty")
    assert outcome["status"] == "DELIVERED"
    assert [a["status"] for a in outcome["attemptLog"]] == ["503"] * 6 + ["204"]
    attempts = [
        r
        for r in local_stack.http.get("/_sim/esloyalty/requests").json()
        if {k.lower(): v for k, v in r["headers"].items()}.get("webhook-id") == message_id
    ]
    assert len(attempts) == 7  # every attempt carried the same webhook-id
