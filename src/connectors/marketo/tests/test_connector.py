"""The Marketo connector: Adobe's documented samples, the exact requests it makes, its token, the
errors Marketo answers with HTTP 200, the daily quota, and the kit's contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.marketo import client as api
from connectors.marketo.client import RecordResult
from connectors.marketo.config import ConfigError, parse_config
from connectors.marketo.manifest import MANIFEST
from connectors.marketo.tests.harness import harness, later, sample_config_document
from dig_connector_kit.model import Result
from dig_connector_kit.ports import MemberContact
from dig_connector_kit.ratelimit import RateLimit
from dig_connector_kit.testing import ConnectorContract, inbound
from dig_contracts.examples import example_event

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LIMIT = RateLimit(requests=50, perSeconds=20)


def known_member(h: Any, member: str = "M-100001") -> None:
    """The member registered earlier: the contact store has the email a badge event does not carry."""
    h.contacts.contacts[member] = MemberContact(email="ada@example.com", seen_at="2026-01-01")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# --- Adobe's documented samples ----------------------------------------------------------------------


def test_the_documented_lead_and_activity_results_are_read_per_input() -> None:
    assert api.record_results(fixture("leads_response.json")) == [
        RecordResult("created", 50),
        RecordResult("skipped", None, "1005", "Lead already exists"),
    ]
    # The documented activities example names the skipped item's list "errors", not "reasons".
    assert api.record_results(fixture("activities_response.json")) == [
        RecordResult("added", 50),
        RecordResult("skipped", None, "1004", "Lead not found"),
    ]


def test_the_builders_make_the_documented_requests() -> None:
    leads = fixture("leads_request.json")
    assert api.upsert_leads("", leads["input"], "email", LIMIT).body == leads
    activities = fixture("activities_request.json")
    assert api.add_activities("", activities["input"], LIMIT).body == activities
    trigger = fixture("trigger_request.json")
    assert api.trigger_campaign("", 3001, [318592], {"{{my.rewardName}}": "Coffee"}, LIMIT).body == trigger


def test_the_simulator_answers_the_documented_requests_in_the_documented_shapes() -> None:
    h = harness()
    token = h.tokens.token()
    headers = {"Authorization": f"Bearer {token}"}
    h.simulator.known_fields |= {"firstName"}
    leads = h.simulator.handle(
        "POST", "/rest/v1/leads.json", headers, json.dumps(fixture("leads_request.json")).encode()
    )
    assert [r["status"] for r in leads.body["result"]] == ["created", "created"]
    assert set(leads.body) == set(fixture("leads_response.json"))
    again = h.simulator.handle(
        "POST",
        "/rest/v1/leads.json",
        headers,
        json.dumps({**fixture("leads_request.json"), "action": "createOnly"}).encode(),
    )
    assert again.body["result"][0] == fixture("leads_response.json")["result"][1]  # skipped, 1005


@pytest.mark.parametrize(
    ("code", "retryable", "renew"),
    [
        ("601", True, True),
        ("602", True, True),
        ("606", True, False),
        ("615", True, False),
        ("713", True, False),
        ("607", False, False),
        ("1003", False, False),
    ],
)
def test_errors_in_200_bodies(code: str, retryable: bool, renew: bool) -> None:
    body = {"requestId": "r", "success": False, "errors": [{"code": code, "message": "m"}]}
    verdict = api.read_body(api.upsert_leads("", [{"email": "a@b.c"}], "email", LIMIT), 200, body)
    assert verdict is not None
    assert (verdict.status, verdict.retryable, verdict.renew) == (code, retryable, renew)
    assert (
        api.read_body(api.upsert_leads("", [{"email": "a@b.c"}], "email", LIMIT), 200, fixture("leads_response.json"))
        is None
    )


# --- what each event becomes --------------------------------------------------------------------------


def test_a_registration_a_badge_and_a_redemption_become_one_lead_call_one_activity_call_and_a_trigger() -> None:
    h = harness()
    registration = inbound(example_event("MEMBER_REGISTRATION"))
    badge = inbound(example_event("BADGE_AWARD"))
    redemption = inbound(example_event("REDEMPTION"))
    outcomes = h.deliver(registration, badge, redemption)
    assert {o.result for o in outcomes.values()} == {Result.DELIVERED}, outcomes
    assert [c["call"] for c in h.calls()] == [
        "token",
        "leads.json",
        "activities/external.json",
        "campaigns/trigger.json",
    ]
    [leads] = h.calls("leads.json")
    assert leads["body"] == {
        "action": "createOrUpdate",
        "lookupField": "email",
        "input": [  # one lead, the registration's fields merged with the others' email
            {
                "email": "ada@example.com",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "loyaltyMemberId": "M-100001",
                "loyaltyEnrollmentChannel": "WEB",
            }
        ],
    }
    [activities] = h.calls("activities/external.json")
    lead_id = h.simulator.leads["ada@example.com"]["id"]
    assert activities["body"]["input"] == [
        {
            "leadId": lead_id,
            "activityDate": "2026-11-21T14:00:00-05:00",
            "activityTypeId": 100001,
            "primaryAttributeValue": "Coffee Connoisseur",
            "attributes": [
                {"apiName": "badgeId", "value": "B-GOLD-COFFEE"},
                {"apiName": "pointsAwarded", "value": 250},
                {"apiName": "category", "value": "dining"},
            ],
        },
        {
            "leadId": lead_id,
            "activityDate": "2026-11-21T10:02:00-05:00",
            "activityTypeId": 100002,
            "primaryAttributeValue": "Carte-cadeau",
            "attributes": [{"apiName": "pointsRedeemed", "value": 12500}, {"apiName": "pointsBalance", "value": 800}],
        },
    ]
    [trigger] = h.calls("campaigns/trigger.json")
    assert trigger["path"] == "/rest/v1/campaigns/3001/trigger.json"
    tokens = {t["name"]: t["value"] for t in trigger["body"]["input"]["tokens"]}
    assert trigger["body"]["input"]["leads"] == [{"id": lead_id}]
    assert tokens["{{my.rewardValue}}"] == "1\xa0234,50\xa0$"  # fr-CA money, written for the member
    assert tokens["{{my.redeemedOn}}"] == "21 novembre 2026"
    assert outcomes[badge.message_id].completed == {"activity:100001"}
    assert outcomes[redemption.message_id].completed == {"activity:100002", "campaign:3001"}


def test_a_badge_for_a_member_with_no_known_email_fails_with_the_reason() -> None:
    h = harness()
    [outcome] = h.deliver(inbound(example_event("BADGE_AWARD", memberId="M-unknown"))).values()
    assert outcome.result is Result.FAILED
    assert outcome.error is not None
    assert outcome.error.startswith("no email is known for member M-unknown (Marketo finds leads by email)")
    assert h.calls() == []


def test_a_field_the_instance_does_not_have_fails_that_message_with_marketos_code() -> None:
    h = harness()
    h.simulator.known_fields -= {"loyaltyEnrollmentChannel"}
    [outcome] = h.deliver(inbound(example_event("MEMBER_REGISTRATION"))).values()
    assert outcome.result is Result.FAILED
    assert outcome.error == "leads.json: Marketo skipped the lead: 1006 Field 'loyaltyEnrollmentChannel' not found"


def test_an_event_type_without_a_mapping_is_skipped_with_the_reason() -> None:
    document = sample_config_document()
    del document["events"]["BADGE_AWARD"]
    h = harness(document)
    [outcome] = h.deliver(inbound(example_event("BADGE_AWARD"))).values()
    assert (outcome.result, outcome.notes) == (Result.SKIPPED, ["no Marketo mapping is configured for BADGE_AWARD"])


# --- the token, limits and errors ----------------------------------------------------------------------


def test_the_token_is_reused_renewed_before_expiry_and_after_602_and_never_in_a_url() -> None:
    h = harness()
    h.deliver(inbound(example_event("MEMBER_REGISTRATION", eventId="r-1")))
    h.deliver(inbound(example_event("MEMBER_REGISTRATION", eventId="r-2")))
    assert h.tokens.fetched == 1
    h.simulator.tokens = dict.fromkeys(h.simulator.tokens, 0.0)  # Marketo expired it early
    [outcome] = h.deliver(inbound(example_event("BADGE_AWARD"))).values()
    assert outcome.result is Result.DELIVERED
    assert h.tokens.fetched == 2
    assert [c["codes"] for c in h.calls("leads.json")][-2:] == [["602"], []]  # renewed and resent at once
    assert all("access_token" not in c["path"] for c in h.calls())
    h.clock.now += 3600  # an hour on: renewed before it expires
    h.deliver(inbound(example_event("MEMBER_REGISTRATION", eventId="r-3")))
    assert h.tokens.fetched == 3


def test_rate_limit_answers_are_retried_and_the_message_delivered() -> None:
    h = harness()
    fault = {"code": "606", "rate": 0.5, "calls": ["activities/external.json"]}
    h.simulator.handle("POST", "/faults", {}, json.dumps(fault).encode())
    outcomes = h.deliver(inbound(example_event("MEMBER_REGISTRATION")), inbound(example_event("BADGE_AWARD")))
    assert {o.result for o in outcomes.values()} == {Result.DELIVERED}
    assert any(c["codes"] == ["606"] for c in h.calls())


def test_the_daily_quota_holds_every_message_until_it_resets() -> None:
    h = harness()
    known_member(h)
    h.simulator.daily_quota = 0
    [outcome] = h.deliver(inbound(example_event("BADGE_AWARD"))).values()
    assert outcome.result is Result.RETRY
    assert outcome.error == "held: Marketo's daily API quota is spent (607) until 2026-11-22T06:00:00+00:00"
    assert outcome.hold_seconds == 900
    calls = len(h.calls())
    [again] = h.deliver(inbound(example_event("BADGE_AWARD"))).values()
    assert again.hold_seconds == 900
    assert len(h.calls()) == calls  # held: nothing sent until the reset
    later(h, hours=13)
    h.simulator.daily_quota = 50_000
    [after] = h.deliver(inbound(example_event("BADGE_AWARD"))).values()
    assert after.result is Result.DELIVERED


def test_dig_keeps_to_its_share_of_the_daily_quota_counted_across_invocations() -> None:
    document = sample_config_document()
    document["limits"]["dailyCalls"] = 2
    h = harness(document)
    known_member(h)
    [first] = h.deliver(inbound(example_event("BADGE_AWARD", eventId="b-1"))).values()  # leads + activity
    assert first.result is Result.DELIVERED
    [second] = h.deliver(inbound(example_event("BADGE_AWARD", eventId="b-2"))).values()
    assert second.result is Result.RETRY
    assert second.hold_seconds == 900
    assert second.error == "held: Marketo's daily API quota is spent (607) until 2026-11-22T06:00:00+00:00"
    assert len(h.calls("leads.json")) == 1  # the third call was never made


def test_the_concurrency_share_is_one_to_the_instances_ten() -> None:
    document = sample_config_document()
    document["limits"]["concurrentCalls"] = 1  # the gate holds every invocation's calls to it
    assert parse_config(document).limits.concurrentCalls == 1
    document["limits"]["concurrentCalls"] = 11
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    assert raised.value.problems == ["limits.concurrentCalls: Input should be less than or equal to 10"]


def test_an_activity_whose_answer_was_lost_is_not_sent_again() -> None:
    h = harness()
    known_member(h)
    h.simulator.handle(
        "POST", "/faults", {}, json.dumps({"mode": "lose-answer", "calls": ["activities/external.json"]}).encode()
    )
    [outcome] = h.deliver(inbound(example_event("BADGE_AWARD"))).values()
    assert outcome.result is Result.FAILED
    assert outcome.error is not None
    assert "the answer was lost" in outcome.error
    assert len(h.simulator.activities) == 1  # Marketo logged it; DIG does not log it a second time
    assert len(h.calls("activities/external.json")) == 1


def test_a_replayed_message_does_not_repeat_an_activity_already_added() -> None:
    h = harness()
    message = inbound(example_event("REDEMPTION"))
    [first] = h.deliver(message).values()
    [again] = h.deliver(inbound(example_event("REDEMPTION"), completed=frozenset(first.completed))).values()
    assert again.result is Result.DELIVERED
    assert len(h.simulator.activities) == 1
    assert len(h.simulator.triggers) == 1


# --- configuration and the kit's contract ---------------------------------------------------------------


def test_the_sample_configuration_is_valid_and_maps_every_event_type_the_connector_takes() -> None:
    config = parse_config(sample_config_document())
    assert all(config.for_type(t) is not None for t in MANIFEST.event_types)


def test_a_bad_configuration_is_refused_naming_each_problem() -> None:
    document = sample_config_document()
    document["events"]["REDEMPTION"]["campaign"]["tokens"]["{{my.x}}"] = "badgeName"
    document["events"]["MEMBER_TIER"] = {}
    document["leadFields"] = {"firstName": "firstName"}
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    assert raised.value.problems == [
        "leadFields: the lookup field email must be mapped (it is how Marketo finds the lead)",
        "events.REDEMPTION.campaign.tokens.{{my.x}}: REDEMPTION has no value 'badgeName' (known: email, eventId, "
        "memberId, occurredAt, pointsBalance, pointsRedeemed, programId, redeemedAt, redemptionId, rewardName, "
        "rewardValue)",
        "events.MEMBER_TIER: the Marketo connector maps MEMBER_REGISTRATION, BADGE_AWARD, REDEMPTION only",
    ]


def test_the_marketo_connector_keeps_the_connector_contract() -> None:
    events = [example_event(t) for t in MANIFEST.event_types]
    ConnectorContract(lambda: harness().connector, events, MANIFEST).check()
