"""Salesforce Marketing Cloud through `dig local`, on a stack of its own (its connector only): each mapped
event type reaches the simulator at the right endpoint with the right key, SMS only after an opt-in; a
recipient SFMC refuses in its 202 ends FAILED with SFMC's code; a lost answer never sends twice; an
outage, then `dig replay --connector sfmc`, sends every mail exactly once; ENS's callback verification
is completed and its signed unsubscribes become inbound consent events."""

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


LATER_TYPES = (
    "REDEMPTION",
    "MEMBER_TIER",
    "PARTNER_CARD_LINK",
    "BADGE_AWARD",
    "MEMBER_PROFILE_UPDATE",
    "VOUCHER_ISSUED",
)


def member_events(member: str, email: str) -> list[dict[str, Any]]:
    """The registration and the SMS opt-in first, then every other mapped type."""
    registration = example_event("MEMBER_REGISTRATION", eventId=f"reg-{member}", memberId=member)
    registration["data"]["email"] = email
    sms = example_event("OPT_IN_SMS", eventId=f"sms-{member}", memberId=member)
    events = [registration, sms]
    for event_type in LATER_TYPES:
        event = example_event(event_type, eventId=f"{event_type.lower()}-{member}", memberId=member)
        event.get("data", {}).pop("email", None)  # the address the registration brought is used
        if event_type == "VOUCHER_ISSUED":
            event["data"]["voucherId"] = f"V-{member}"
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
    events = member_events(member, f"{member.lower()}@example.com")
    # The registration and the opt-in first, so that later mails and SMS find the address and consent.
    first = post_all(stack, events[:2])
    assert [delivery(stack.wait_for_final(i), "sfmc")["status"] for i in first] == ["DELIVERED"] * 2
    later = post_all(stack, events[2:])
    assert [delivery(stack.wait_for_final(i), "sfmc")["status"] for i in later] == ["DELIVERED"] * len(LATER_TYPES)
    mails = [m for m in sfmc(stack, "/mails") if m["contactKey"] == member]
    assert sorted(m["definitionKey"] for m in mails) == [
        "loyalty_badge",
        "loyalty_partner_card",
        "loyalty_redemption",
        "loyalty_tier",
        "loyalty_voucher",
        "loyalty_welcome",
    ]
    texts = [m for m in sfmc(stack, "/sms") if m["contactKey"] == member]
    assert sorted((m["definitionKey"], m["to"]) for m in texts) == [
        ("loyalty_redemption_sms", "14165550123"),
        ("loyalty_voucher_sms", "14165550123"),
    ]
    assert {m["to"] for m in mails} == {f"{member.lower()}@example.com"}
    assert [j["ContactKey"] for j in sfmc(stack, "/journeys")].count(member) == 1
    rows = sfmc(stack, "/rows")
    assert next(r for r in rows["DIG_Members"] if r["MemberId"] == member)["Email"] == f"{member.lower()}@example.com"
    assert [r["Tier"] for r in rows["DIG_Tiers"] if r["MemberId"] == member] != []
    assert [r["Code"] for r in rows["DIG_Vouchers"] if r["MemberId"] == member] == ["ACME-X7K2-PQ9M"]


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
        "SFMC refused the email recipient: 109106 MCMS_UTM_Validation_InvalidTo",
    )

    lost = f"L-{uuid.uuid4().hex[:8]}"
    fault = {"status": 504, "mode": "lose-answer", "calls": ["sendEmail"], "times": 1}
    assert stack.http.post("/_sim/sfmc/faults", json=fault).status_code == 204
    [sent] = post_all(stack, member_events(lost, f"{lost.lower()}@example.com")[:1])
    assert delivery(stack.wait_for_final(sent), "sfmc")["status"] == "DELIVERED"
    assert [m["contactKey"] for m in sfmc(stack, "/mails")].count(lost) == 1


def test_an_outage_then_a_replay_sends_every_mail_and_sms_exactly_once(stack: LocalStackProcess) -> None:
    members = [f"O-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    registration = member_events(members[0], f"{members[0].lower()}@example.com")[0]
    _, opt_in, redemption, *_ = member_events(members[1], f"{members[1].lower()}@example.com")
    redemption["data"]["email"] = f"{members[1].lower()}@example.com"
    [consented] = post_all(stack, [opt_in])
    stack.wait_for_final(consented)
    outage = {"status": 503, "calls": ["sendEmail", "sendSms"]}
    assert stack.http.post("/_sim/sfmc/faults", json=outage).status_code == 204
    try:
        ids = post_all(stack, [registration, redemption])
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
    texts = Counter(m["contactKey"] for m in sfmc(stack, "/sms"))
    assert [texts[m] for m in members] == [0, 1]
    # The journey and the rows were done on the first attempt: the replay did not repeat them.
    assert Counter(j["ContactKey"] for j in sfmc(stack, "/journeys"))[members[0]] == 1


ENS_HOOK = "/v1/inbound/sfmc/ens"


def test_ens_is_verified_and_its_signed_unsubscribes_come_back_as_consent_events(stack: LocalStackProcess) -> None:
    callback = stack.http.post(
        "/_sim/sfmc/ens/callbacks", json={"url": f"{stack.url}{ENS_HOOK}", "callbackId": "dig-local-ens-callback"}
    ).json()
    handshake = {"callbackId": callback["callbackId"], "verificationKey": callback["verificationKey"]}
    assert stack.http.post(ENS_HOOK, json=handshake, headers={"Authorization": ""}).status_code == 202
    stack.wait_until(
        lambda: all(c["verified"] for c in sfmc(stack, "/ens/callbacks")), "the callback verified by the connector"
    )
    member = f"U-{uuid.uuid4().hex[:8]}"
    [registered] = post_all(stack, member_events(member, f"{member.lower()}@example.com")[:1])
    stack.wait_for_final(registered)
    key = stack.http.get("/_local/stack").json()["webhookSecrets"]["sfmc/ens"]
    notification = stack.http.post(
        "/_sim/sfmc/ens/unsubscribes",
        json={"signatureKey": key, "unsubscribes": [{"subscriberKey": member, "to": f"{member.lower()}@example.com"}]},
    ).json()
    forged = stack.http.post(
        ENS_HOOK,
        content=notification["body"],
        headers={**notification["headers"], "x-sfmc-ens-signature": "AAAA", "Authorization": ""},
    )
    assert forged.status_code == 403
    for _ in range(2):  # ENS delivers at least once
        sent = stack.http.post(
            ENS_HOOK, content=notification["body"], headers={**notification["headers"], "Authorization": ""}
        )
        assert sent.status_code == 202
    consent = stack.wait_until(
        lambda: [e for e in _inbound(stack) if e["event"]["memberId"] == member], "the unsubscribe as an inbound event"
    )
    assert [(e["event"]["eventType"], e["event"]["data"]) for e in consent] == [
        ("MEMBER_CONSENT_CHANGED", {"channel": "EMAIL", "consent": "OPTED_OUT", "reason": "UNSUBSCRIBE"})
    ]


def _inbound(stack: LocalStackProcess) -> list[dict[str, Any]]:
    return list(stack.http.get("/v1/inbound-events", params={"limit": 200}).json()["events"])
