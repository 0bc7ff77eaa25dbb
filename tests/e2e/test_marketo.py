"""Adobe Marketo Engage beside Optimove, end to end on `dig local`: each event type reaches the
connectors that subscribe to it; a token that expires mid-batch is renewed; under Marketo's rate and
concurrency errors and lost answers nothing is lost or sent twice that Marketo would not deduplicate;
an outage is replayed through Marketo's queue only."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dig_contracts.examples import example_event
from tests.e2e.conftest import LocalStackProcess, delivery, start_local_stack

DIG = str(Path(sys.executable).parent / "dig")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    yield from start_local_stack()


def member_events(stack: LocalStackProcess) -> tuple[str, str, list[dict[str, Any]]]:
    """A registration (with its email), a badge and a redemption of one new member."""
    member = stack.existing_member()
    email = f"{member.lower()}@example.com"
    registration = example_event("MEMBER_REGISTRATION", eventId=f"mk-reg-{member}", memberId=member)
    registration["data"]["email"] = email
    badge = example_event("BADGE_AWARD", eventId=f"mk-badge-{member}", memberId=member)
    redemption = example_event("REDEMPTION", eventId=f"mk-red-{member}", memberId=member)
    redemption["data"]["email"] = email
    return member, email, [registration, badge, redemption]


def post_in_order(stack: LocalStackProcess, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = []
    for event in events:  # the registration first: it brings the email the badge is found by
        answer = stack.post_event(event)
        assert answer.status_code == 202, answer.text
        records.append(stack.wait_for_final(answer.json()["messageId"], timeout=180))
    return records


def marketo(stack: LocalStackProcess, what: str) -> list[dict[str, Any]]:
    return stack.http.get(f"/_sim/marketo/{what}").json()


def test_each_event_reaches_marketo_as_documented_and_optimove_where_it_subscribes(stack: LocalStackProcess) -> None:
    _, email, events = member_events(stack)
    registration, badge, redemption = post_in_order(stack, events)
    assert {d["connector"]: d["status"] for d in registration["deliveries"]} == {
        "marketo": "DELIVERED",
        "optimove": "DELIVERED",
    }
    assert [d["connector"] for d in badge["deliveries"]] == ["marketo"]  # Optimove does not take badges
    assert {d["connector"] for d in redemption["deliveries"]} == {"marketo", "optimove"}
    assert all(d["status"] == "DELIVERED" for d in (*badge["deliveries"], *redemption["deliveries"]))

    [lead] = [lead for lead in marketo(stack, "leads") if lead["email"] == email]
    assert lead["firstName"] == "Ada"
    activities = [a for a in marketo(stack, "activities") if a["leadId"] == lead["id"]]
    assert sorted((a["activityTypeId"], a["primaryAttributeValue"]) for a in activities) == [
        (100001, "Coffee Connoisseur"),
        (100002, "Carte-cadeau"),
    ]
    [trigger] = [t for t in marketo(stack, "triggers") if t["leads"] == [{"id": lead["id"]}]]
    assert trigger["campaignId"] == 3001
    assert {"name": "{{my.rewardName}}", "value": "Carte-cadeau"} in trigger["tokens"]

    # Every REST call Marketo answered so far was counted against DIG's share of the day, and `dig status` says so.
    rest_calls = [r for r in marketo(stack, "requests") if not r["path"].startswith("/identity")]
    status = subprocess.run(
        [DIG, "status", "--local", "--local-url", stack.url, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert status.stdout, status.stderr
    [figures] = [c for c in json.loads(status.stdout)["connectors"] if c["name"] == "marketo"]
    assert figures["quota_calls"]["calls"] == len(rest_calls) > 0


def test_a_token_that_expires_mid_batch_is_renewed_without_losing_a_message(stack: LocalStackProcess) -> None:
    _, _, events = member_events(stack)
    post_in_order(stack, events[:1])
    assert stack.http.post("/_sim/marketo/tokens/expire").status_code == 204
    badge, redemption = post_in_order(stack, events[1:])
    assert delivery(badge, "marketo")["status"] == "DELIVERED"
    assert delivery(redemption, "marketo")["status"] == "DELIVERED"
    codes = [r["codes"] for r in marketo(stack, "requests") if r["call"] != "token"]
    assert ["602"] in codes  # the expired token was refused once, renewed, and the call sent again


def test_under_rate_concurrency_and_lost_answer_faults_nothing_is_lost_or_sent_twice(stack: LocalStackProcess) -> None:
    try:
        for fault in (
            {"code": "606", "rate": 0.3, "calls": ["leads.json"]},
            {"code": "615", "rate": 0.3, "calls": ["activities/external.json"]},
        ):
            assert stack.http.post("/_sim/marketo/faults", json=fault).status_code == 204
            for _ in range(3):
                _, _, events = member_events(stack)
                for record in post_in_order(stack, events):
                    assert delivery(record, "marketo")["status"] == "DELIVERED", delivery(record, "marketo")
        lost = {"mode": "lose-answer", "rate": 0.5, "calls": ["leads.json"]}  # leads are idempotent: resent
        assert stack.http.post("/_sim/marketo/faults", json=lost).status_code == 204
        _, email, events = member_events(stack)
        for record in post_in_order(stack, events):
            assert delivery(record, "marketo")["status"] == "DELIVERED"
        assert [lead["email"] for lead in marketo(stack, "leads")].count(email) == 1
    finally:
        stack.http.delete("/_sim/marketo/faults")
    per_message = Counter((a["leadId"], a["activityTypeId"], a["activityDate"]) for a in marketo(stack, "activities"))
    assert set(per_message.values()) == {1}  # activities have no idempotency key: never sent twice


def test_an_outage_replayed_through_marketos_queue_delivers_everything_once(stack: LocalStackProcess) -> None:
    _, _, events = member_events(stack)
    post_in_order(stack, events[:1])
    optimove_before = len(stack.simulator_requests())
    assert stack.http.post("/_sim/marketo/faults", json={"status": 502, "rate": 1.0}).status_code == 204
    badge = post_in_order(stack, events[1:2])[0]
    stack.http.delete("/_sim/marketo/faults")
    assert delivery(badge, "marketo")["status"] == "FAILED"
    assert "502" in delivery(badge, "marketo")["lastError"]

    replay = subprocess.run(
        [DIG, "replay", "--connector", "marketo", "--message-id", badge["messageId"], "--yes", "--local"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    stack.wait_until(
        lambda: (
            delivery(stack.http.get(f"/v1/messages/{badge['messageId']}").json(), "marketo")["status"] == "DELIVERED"
        ),
        "the replayed badge DELIVERED to Marketo",
    )
    badges = [a for a in marketo(stack, "activities") if a["primaryAttributeValue"] == "Coffee Connoisseur"]
    assert Counter(a["activityDate"] + str(a["leadId"]) for a in badges).most_common(1)[0][1] == 1
    assert len(stack.simulator_requests()) == optimove_before  # Optimove received nothing from the replay
