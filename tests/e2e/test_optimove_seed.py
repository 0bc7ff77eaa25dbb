"""The rest of the seed's Optimove syndication on `dig local` (the shared stack): a memberAccounts extract
fills the member contact store, so a tier mail for a member never seen in an event reaches Optimove at the
extract's address and in its language (`dig member show` says where it came from); each new event type
reaches the Optimove simulator in its documented request shapes, and the household, transfer and purchase
mails go once each, the transfer's to both members."""

from __future__ import annotations

import gzip
import json
import uuid
from collections import Counter
from typing import Any

from dig_contracts.examples import example_event
from tests.e2e.conftest import LocalStackProcess, delivery
from tests.e2e.test_files import dig, file_done
from tests.e2e.test_optimove_feed import upload_extract


def mails(stack: LocalStackProcess, run: str) -> list[dict[str, Any]]:
    return [
        r["body"]
        for r in stack.simulator_requests()
        if r["call"] == "SendTransactionalMail" and run in json.dumps(r["body"])
    ]


def deliver(stack: LocalStackProcess, event: dict[str, Any]) -> dict[str, Any]:
    answer = stack.post_event(event)
    assert answer.status_code == 202, answer.text
    return delivery(stack.wait_for_final(answer.json()["messageId"]))


def test_an_extracts_contacts_address_a_mail_to_a_member_no_event_ever_named_and_the_new_types_reach_optimove(
    local_stack: LocalStackProcess,
) -> None:
    stack = local_stack
    run = uuid.uuid4().hex[:8]
    ada, grace = stack.existing_member(f"SEED-{run}-A"), stack.existing_member(f"SEED-{run}-G")
    extract = (
        "memberId,email,locale,LastUpdated\n"
        f"{ada},ada.{run}@example.com,fr-CA,2026-12-01T05:00:00Z\n"
        f"{grace},grace.{run}@example.com,de-DE,2026-12-01T05:00:00Z\n"
    ).encode()
    file_id = upload_extract(stack, gzip.compress(extract, mtime=0))
    assert file_done(stack, file_id)["status"] == "COMPLETED"

    shown = dig(stack, "member", "show", ada, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) | {"expiresAt": None} == {
        "memberId": ada,
        "email": "a***@example.com",
        "locale": "fr-CA",
        "since": "2026-12-01T05:00:00.000000Z",
        "source": f"extract memberAccounts {file_id}",
        "mobile": None,
        "smsOptIn": None,
        "expiresAt": None,
    }

    # A tier mail for a member no event ever gave an email: the extract's address, in French.
    tier = example_event("MEMBER_TIER", eventId=f"evt-{run}-tier", memberId=ada)
    tier.pop("locale", None)
    assert deliver(stack, tier)["status"] == "DELIVERED"
    [tier_mail] = [m for m in mails(stack, run) if m["TemplateID"] == 502]
    assert tier_mail["Recipients"][0]["Email"] == f"ada.{run}@example.com"
    tags = {p["Tag"]: p["Value"] for p in tier_mail["Recipients"][0]["Personalizations"]}
    assert tags["EFFECTIVE_ON"].endswith("novembre 2026")

    # Each new type, as ES Loyalty sends it: delivered to Optimove.
    for event_type in ("MEMBER_HOUSEHOLD_CHANGED", "OFFERS_ASSIGNED", "VOUCHER_ISSUED", "PURCHASE"):
        event = example_event(event_type, eventId=f"evt-{run}-{event_type}", memberId=ada)
        assert deliver(stack, event)["status"] == "DELIVERED", event_type
    transfer = example_event("POINTS_TRANSFERRED", eventId=f"evt-{run}-transfer", memberId=ada)
    transfer["data"] |= {"fromMemberId": ada, "toMemberId": grace}
    assert deliver(stack, transfer)["status"] == "DELIVERED"
    assert stack.post_event(transfer).json()["status"] == "duplicate"

    sent = mails(stack, run)
    once = Counter(m["UniqueMessageID"] for m in sent)
    assert all(count == 1 for count in once.values()), once
    by_template = {m["TemplateID"]: m["Recipients"][0] for m in sent}
    assert {505, 506, 507, 508, 509} <= set(by_template)  # household, voucher, transfer x2, purchase
    assert by_template[507]["Email"] == f"ada.{run}@example.com"
    assert by_template[508]["Email"] == f"grace.{run}@example.com"
    grace_tags = {p["Tag"]: p["Value"] for p in by_template[508]["Personalizations"]}
    assert grace_tags["POINTS"] == "1.500"  # de-DE, Grace's own language
    offers = [
        r
        for r in stack.simulator_requests()
        if r["call"] == "reportEvent" and r["body"]["cid"] == ada and r["body"]["eid"] == 1002
    ]
    assert [o["body"]["context"] for o in offers] == [{"offer_count": 2, "top_offer_id": "OFF-77"}]
