"""The Marketo connector as Adobe documents Marketo (issue: server-side timeouts, the lookup field,
the quota's reset hour, retryable 6xx codes), each against Adobe's samples in fixtures/."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.marketo import client as api
from connectors.marketo.config import parse_config
from connectors.marketo.delivery import quota_resets_at
from connectors.marketo.tests.harness import harness, later, sample_config_document
from dig_connector_kit.model import Result
from dig_connector_kit.ports import MemberContact
from dig_connector_kit.ratelimit import RateLimit
from dig_connector_kit.testing import Fault, inbound
from dig_contracts.examples import example_event

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LIMIT = RateLimit(requests=50, perSeconds=20)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fault(**spec: Any) -> Fault:
    return Fault.from_document(spec)


# --- timeouts: Sync Leads and Add Custom Activity take up to 90 s ----------------------------------------


def test_an_upsert_answered_after_45_s_is_waited_for_and_makes_one_lead() -> None:
    h = harness()
    h.simulator.set_fault(fault(mode="slow", delay=45, calls=["leads.json"], times=1))
    message = inbound(example_event("MEMBER_REGISTRATION"))
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    assert len(h.calls("leads.json")) == 1
    assert h.simulator.duplicate_leads == []  # with a 20 s timeout the resend made a second lead


def test_the_calls_carry_adobes_documented_timeouts() -> None:
    assert api.upsert_leads("", [{"email": "a@b.c"}], "email", LIMIT).read_timeout_seconds == 90
    assert api.add_activities("", [{"leadId": 1}], LIMIT).read_timeout_seconds == 90
    assert api.get_leads("", "email", ["a@b.c"], LIMIT).read_timeout_seconds == 60


def test_a_lost_upsert_answer_is_followed_by_a_lookup_and_an_update_never_a_second_create() -> None:
    h = harness()
    h.simulator.set_fault(fault(mode="lose-answer", calls=["leads.json"], times=1))
    message = inbound(example_event("MEMBER_REGISTRATION"))
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.DELIVERED, outcome.error
    calls = [(c["call"], (c["body"] or {}).get("action")) for c in h.calls() if c["call"] != "token"]
    assert calls == [
        ("leads.json", "createOrUpdate"),
        ("leads.json (lookup)", None),
        ("leads.json", "updateOnly"),
    ]
    [lookup] = h.calls("leads.json (lookup)")
    assert lookup["method"] == "GET"
    assert "the lead was found by email and updated, not created again" in outcome.notes[-1]
    assert h.simulator.duplicate_leads == []


def test_an_answer_lost_past_90_s_before_the_lead_exists_sends_nothing_again_until_later() -> None:
    h = harness()
    h.simulator.set_fault(fault(mode="slow", delay=120, calls=["leads.json"], times=1))
    message = inbound(example_event("MEMBER_REGISTRATION"))
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.RETRY
    assert "the lead is not in Marketo yet; sent again later" in (outcome.error or "")
    assert len(h.calls("leads.json")) == 1  # no second createOrUpdate while Marketo may still make the lead
    h.clock.now += 600  # SQS brings it back after the visibility timeout
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    assert h.simulator.duplicate_leads == []
    assert len(h.simulator.leads) == 1


def test_get_leads_answers_are_read_as_adobe_documents_them() -> None:
    assert api.found_leads(fixture("get_leads_response.json"), "email") == {
        "abe@usa.gov": 318581,
        "george@usa.gov": 318592,
    }
    assert api.found_leads({"requestId": "x", "result": [], "success": True}, "email") == {}


# --- the lookup field -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("lookup_field", "source"), [("email", "email"), ("loyaltyMemberId", "memberId")])
def test_every_lookup_field_the_configuration_allows_keys_the_lead_by_its_own_value(
    lookup_field: str, source: str
) -> None:
    document = sample_config_document() | {"lookupField": lookup_field}
    h = harness(document)
    registration = example_event("MEMBER_REGISTRATION")
    message = inbound(registration)
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    [call] = h.calls("leads.json")
    assert call["body"]["lookupField"] == lookup_field
    [lead] = call["body"]["input"]
    expected = registration["data"]["email"] if source == "email" else registration["memberId"]
    assert lead[lookup_field] == expected
    assert lead["email"] == registration["data"]["email"]  # never written into another field


def test_with_a_member_id_lookup_a_badge_needs_no_email() -> None:
    h = harness(sample_config_document() | {"lookupField": "loyaltyMemberId"})
    badge = example_event("BADGE_AWARD", memberId="M-no-email")
    message = inbound(badge)
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    [call] = h.calls("leads.json")
    assert call["body"]["input"] == [{"loyaltyMemberId": "M-no-email"}]


# --- the daily quota's reset hour: "12:00AM CST" -----------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "reset"),
    [
        ("2026-07-01T04:30:00", "2026-07-01T05:00:00"),  # summer: midnight CDT comes first
        ("2026-07-01T05:30:00", "2026-07-01T06:00:00"),  # between the two: an hour at most, not a day
        ("2026-01-15T05:30:00", "2026-01-15T06:00:00"),  # winter: the two are one
        ("2026-01-15T07:00:00", "2026-01-16T06:00:00"),
    ],
)
def test_held_messages_are_released_at_the_earlier_of_the_two_midnights(now: str, reset: str) -> None:
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    assert quota_resets_at(moment) == datetime.fromisoformat(reset).replace(tzinfo=UTC)


def test_a_607_in_the_summer_hour_after_midnight_cdt_holds_until_midnight_cst() -> None:
    h = harness()
    h.now[0] = datetime(2026, 7, 1, 5, 30, tzinfo=UTC)
    h.simulator.set_fault(fault(code="607", calls=["leads.json"]))
    message = inbound(example_event("MEMBER_REGISTRATION"))
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.RETRY
    assert outcome.hold_seconds == 900  # SQS's longest delay; held until 06:00 UTC, not tomorrow
    later(h, minutes=31)
    h.simulator.set_fault(None)
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED


# --- 6xx codes: "the entire request failed and was not executed" -----------------------------------------


@pytest.mark.parametrize("sample", ["error_system.json", "error_invalid_subscription.json"])
def test_611_and_614_are_sent_again(sample: str) -> None:
    body = fixture(sample)
    verdict = api.read_body(api.upsert_leads("", [{"email": "a@b.c"}], "email", LIMIT), 200, body)
    assert verdict is not None
    assert verdict.retryable
    h = harness()
    code = body["errors"][0]["code"]
    h.simulator.set_fault(fault(code=code, calls=["leads.json"], times=1))
    message = inbound(example_event("MEMBER_REGISTRATION"))
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    assert [c["codes"] for c in h.calls("leads.json")] == [[code], []]


def test_a_502_on_an_activity_is_not_sent_again_and_the_audit_says_it_is_deliberate() -> None:
    h = harness()
    h.contacts.contacts["M-100001"] = MemberContact(email="ada@example.com", seen_at="2026-01-01")
    h.simulator.set_fault(fault(status=502, calls=["activities/external.json"]))
    message = inbound(example_event("BADGE_AWARD"))
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.FAILED
    assert len(h.calls("activities/external.json")) == 1
    assert "Marketo may have acted on it, and it does not deduplicate this call, so it is not sent again" in (
        outcome.error or ""
    )


# --- smaller ------------------------------------------------------------------------------------------


def test_a_primary_attribute_from_an_absent_optional_field_fails_saying_so_and_sends_nothing() -> None:
    document = sample_config_document()
    document["events"]["BADGE_AWARD"]["activity"]["primaryAttribute"] = "category"
    h = harness(document)
    h.contacts.contacts["M-100001"] = MemberContact(email="ada@example.com", seen_at="2026-01-01")
    badge = example_event("BADGE_AWARD")
    badge["data"].pop("category", None)
    message = inbound(badge)
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.FAILED
    assert outcome.error == (
        "the activity's primary attribute category has no value in this event: Marketo requires one "
        "(map a value every event carries)"
    )
    assert [c["call"] for c in h.calls()] == []


def test_a_token_answer_expiring_now_is_used_and_the_batch_is_delivered() -> None:
    assert fixture("token_expires_now.json")["expires_in"] == 0
    h = harness()
    h.tokens.token()
    h.clock.now += h.simulator.token_lifetime - 0.5  # Marketo now answers the live token with expires_in 0
    message = inbound(example_event("MEMBER_REGISTRATION"))
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED


@pytest.mark.parametrize(
    ("email", "sent", "error"),
    [
        ("ada@exämple.com", "ada@xn--exmple-cua.com", None),
        ("adä@example.com", None, "email: Marketo takes email addresses in ASCII only, and this one is not"),
    ],
)
def test_a_non_ascii_email_is_encoded_when_its_domain_can_be_and_refused_when_not(
    email: str, sent: str | None, error: str | None
) -> None:
    h = harness()
    registration = example_event("MEMBER_REGISTRATION")
    registration["data"]["email"] = email
    message = inbound(registration)
    outcome = h.deliver(message)[message.message_id]
    if sent is None:
        assert (outcome.result, outcome.error) == (Result.FAILED, error)
        assert h.calls("leads.json") == []
    else:
        assert outcome.result is Result.DELIVERED
        assert h.calls("leads.json")[0]["body"]["input"][0]["email"] == sent


def test_a_daily_quota_above_50000_is_accepted_for_instances_that_bought_more() -> None:
    document = sample_config_document()
    document["limits"]["dailyCalls"] = 200_000
    assert parse_config(document).limits.dailyCalls == 200_000


def test_every_rest_call_waits_for_a_place_among_the_configured_concurrent_calls() -> None:
    document = sample_config_document()
    document["limits"]["concurrentCalls"] = 3
    h = harness(document)
    h.contacts.contacts["M-100001"] = MemberContact(email="ada@example.com", seen_at="2026-01-01")
    messages = [inbound(example_event(t)) for t in ("MEMBER_REGISTRATION", "BADGE_AWARD", "REDEMPTION")]
    assert {o.result for o in h.deliver(*messages).values()} == {Result.DELIVERED}
    rest_calls = [c for c in h.calls() if c["call"] != "token"]  # identity calls count toward no limit
    assert h.gate.holds == [(api.LIMITER_KEY, 3)] * len(rest_calls)
