"""Salesforce Marketing Cloud through `dig local`, on a stack of its own (its connector only): each mapped
event type reaches the simulator at the right endpoint with the right key; a recipient SFMC refuses in
its 202 ends FAILED with SFMC's code; a lost answer never sends twice; an outage, then `dig replay
--connector sfmc`, sends every mail exactly once."""

from __future__ import annotations

import subprocess
import sys
import uuid
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
    yield from start_local_stack("sfmc")


def member_events(member: str, email: str) -> list[dict[str, Any]]:
    registration = example_event("MEMBER_REGISTRATION", eventId=f"reg-{member}", memberId=member)
    registration["data"]["email"] = email
    events = [registration]
    for event_type in ("REDEMPTION", "MEMBER_TIER", "PARTNER_CARD_LINK", "BADGE_AWARD", "MEMBER_PROFILE_UPDATE"):
        event = example_event(event_type, eventId=f"{event_type.lower()}-{member}", memberId=member)
        event.get("data", {}).pop("email", None)  # the address the registration brought is used
        events.append(event)
    return events


def post_all(stack: LocalStackProcess, events: list[dict[str, Any]]) -> list[str]:
    ids = []
    for event in events:
        answer = stack.post_event(event)
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["messageId"])
    return ids


def sfmc(stack: LocalStackProcess, path: str) -> Any:
    return stack.http.get(f"/_sim/sfmc{path}").json()


def test_each_mapped_event_type_reaches_sfmc_once_with_its_key(stack: LocalStackProcess) -> None:
    member = f"S-{uuid.uuid4().hex[:8]}"
    ids = post_all(stack, member_events(member, f"{member.lower()}@example.com"))
    # One at a time: the registration first, so that later mails find the member's address.
    statuses = [delivery(stack.wait_for_final(i), "sfmc")["status"] for i in ids]
    assert statuses == ["DELIVERED"] * 6
    mails = [m for m in sfmc(stack, "/mails") if m["contactKey"] == member]
    assert sorted(m["definitionKey"] for m in mails) == [
        "loyalty_badge",
        "loyalty_partner_card",
        "loyalty_redemption",
        "loyalty_tier",
        "loyalty_welcome",
    ]
    assert {m["to"] for m in mails} == {f"{member.lower()}@example.com"}
    assert [j["ContactKey"] for j in sfmc(stack, "/journeys")].count(member) == 1
    rows = sfmc(stack, "/rows")
    assert next(r for r in rows["DIG_Members"] if r["MemberId"] == member)["Email"] == f"{member.lower()}@example.com"
    assert [r["Tier"] for r in rows["DIG_Tiers"] if r["MemberId"] == member] != []


def test_a_refused_recipient_fails_with_sfmcs_code_and_a_lost_answer_sends_once(stack: LocalStackProcess) -> None:
    refused = f"R-{uuid.uuid4().hex[:8]}"
    stack.http.post(
        "/_sim/sfmc/recipient-errors",
        json={"to": f"{refused.lower()}@example.com", "errorcode": 109106, "message": "MCMS_UTM_Validation_InvalidTo"},
    )
    [failed] = post_all(stack, member_events(refused, f"{refused.lower()}@example.com")[:1])
    record = delivery(stack.wait_for_final(failed), "sfmc")
    assert (record["status"], record["lastError"]) == (
        "FAILED",
        "SFMC refused the recipient: 109106 MCMS_UTM_Validation_InvalidTo",
    )

    lost = f"L-{uuid.uuid4().hex[:8]}"
    fault = {"status": 504, "mode": "lose-answer", "calls": ["sendEmail"], "times": 1}
    assert stack.http.post("/_sim/sfmc/faults", json=fault).status_code == 204
    [sent] = post_all(stack, member_events(lost, f"{lost.lower()}@example.com")[:1])
    assert delivery(stack.wait_for_final(sent), "sfmc")["status"] == "DELIVERED"
    assert [m["contactKey"] for m in sfmc(stack, "/mails")].count(lost) == 1


def test_an_outage_then_a_replay_sends_every_mail_exactly_once(stack: LocalStackProcess) -> None:
    members = [f"O-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    registrations = [member_events(m, f"{m.lower()}@example.com")[0] for m in members]
    assert stack.http.post("/_sim/sfmc/faults", json={"status": 503, "calls": ["sendEmail"]}).status_code == 204
    try:
        ids = post_all(stack, registrations)
        records = [delivery(stack.wait_for_final(i, timeout=120), "sfmc") for i in ids]
        assert [r["status"] for r in records] == ["FAILED", "FAILED"]
        assert all(r["lastError"].startswith("retries spent after 5 receives") for r in records)
    finally:
        stack.http.delete("/_sim/sfmc/faults")
    replay = subprocess.run(
        [
            DIG,
            "replay",
            "--connector",
            "sfmc",
            "--status",
            "failed",
            "--since",
            "1h",
            "--yes",
            "--local",
            "--local-url",
            stack.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    stack.wait_until(
        lambda: all(delivery(stack.http.get(f"/v1/messages/{i}").json(), "sfmc")["status"] == "DELIVERED" for i in ids),
        "replayed and delivered",
    )
    sent = Counter(m["contactKey"] for m in sfmc(stack, "/mails"))
    assert [sent[m] for m in members] == [1, 1]
    # The journey and the rows were done on the first attempt: the replay did not repeat them.
    assert Counter(j["ContactKey"] for j in sfmc(stack, "/journeys"))[members[0]] == 1
