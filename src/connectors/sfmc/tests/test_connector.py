"""The SFMC connector: the exact requests it makes for each mapped event, each outcome, what a lost
answer or an outage does, the late results it asks for, and the kit's contract."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.sfmc import client
from connectors.sfmc.config import ConfigError, parse_config
from connectors.sfmc.local import LOCAL_DOUBLE
from connectors.sfmc.manifest import MANIFEST
from connectors.sfmc.tests.harness import REST_BASE, harness, sample_config_document
from dig_connector_kit.model import Result
from dig_connector_kit.ports import MemberContact
from dig_connector_kit.testing import ConnectorContract, Fault, inbound
from dig_contracts.examples import example_event


def registration(member: str = "M-1", email: str = "ada@example.com", **data: Any) -> dict[str, Any]:
    event = example_event("MEMBER_REGISTRATION", eventId=f"reg-{member}", memberId=member)
    event["data"] |= {"email": email, "firstName": "Ada", **data}
    return event


def test_a_registration_sends_the_welcome_enters_the_journey_and_writes_the_member_row() -> None:
    h = harness()
    message = inbound(registration())
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.DELIVERED
    assert outcome.completed == {"email", "journey:APIEvent-loyalty-welcome", "rows:members"}
    [token] = h.calls("token")
    assert token["body"] == {"grant_type": "client_credentials", "client_secret": "[redacted]"}
    [send] = h.calls("sendEmail")
    assert (send["method"], send["path"]) == ("POST", "/rest/messaging/v1/email/messages/")
    assert send["headers"]["authorization"] == "[redacted]"
    assert send["body"] == {
        "definitionKey": "loyalty_welcome",
        "recipients": [
            {
                "contactKey": "M-1",
                "to": "ada@example.com",
                "messageKey": client.message_key(message.message_id, "loyalty_welcome"),
                "attributes": {"FirstName": "Ada"},
            }
        ],
    }
    [journey] = h.calls("journeyEvent")
    assert journey["body"] == {
        "ContactKey": "M-1",
        "EventDefinitionKey": "APIEvent-loyalty-welcome",
        "Data": {"Channel": message.loyalty_event.data.enrollmentChannel},  # type: ignore[attr-defined]
    }
    [rows] = h.calls("asyncUpsert")
    assert (rows["method"], rows["path"]) == ("PUT", "/rest/data/v1/async/dataextensions/key:DIG_Members/rows")
    assert rows["body"] == {"items": [{"MemberId": "M-1", "Email": "ada@example.com", "FirstName": "Ada"}]}
    # The REST base is the token answer's rest_instance_url, its trailing slash normalised.
    assert h.tokens.rest_base() == f"{REST_BASE}/rest"


def test_a_redemption_mail_carries_money_written_for_the_members_locale() -> None:
    h = harness()
    h.contacts.keep({"M-2": MemberContact(email="zoe@example.com", locale="fr-CA", seen_at="t")}, {})
    event = example_event("REDEMPTION", memberId="M-2")
    event["data"]["reward"]["value"] = {"amount": "1234.50", "currency": "CAD"}
    event["data"].pop("email", None)
    event.pop("locale", None)
    message = inbound(event)
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    [send] = h.calls("sendEmail")
    [recipient] = send["body"]["recipients"]
    assert recipient["to"] == "zoe@example.com"  # from the contact store: the event carried none
    assert recipient["attributes"]["RewardValue"] == "1\xa0234,50\xa0$"  # Babel's fr-CA
    [balances] = [r for r in h.calls("asyncUpsert") if "key:DIG_Balances" in r["path"]]
    assert balances["body"]["items"] == [{"MemberId": "M-2", "PointsBalance": str(event["data"]["pointsBalance"])}]


def test_recipients_of_one_definition_share_a_call_and_a_refused_one_fails_alone_with_sfmcs_code() -> None:
    h = harness()
    h.simulator.recipient_errors["bad@example.com"] = (109106, "MCMS_UTM_Validation_MissingRequiredField_to")
    good, bad = inbound(registration("M-1")), inbound(registration("M-2", "bad@example.com"))
    outcomes = h.deliver(good, bad)
    assert len(h.calls("sendEmail")) == 1
    assert outcomes[good.message_id].result is Result.DELIVERED
    assert outcomes[bad.message_id].result is Result.FAILED
    assert outcomes[bad.message_id].error == (
        "SFMC refused the email recipient: 109106 MCMS_UTM_Validation_MissingRequiredField_to"
    )


def test_a_lost_answer_sent_again_is_refused_as_a_used_key_and_the_mail_goes_out_once() -> None:
    h = harness()
    h.simulator.set_fault(
        Fault.from_document({"status": 504, "mode": "lose-answer", "calls": ["sendEmail"], "times": 1})
    )
    message = inbound(registration())
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.DELIVERED
    assert [a.status for a in outcome.attempts if a.call == "sendEmail"] == ["504", "202"]
    assert len(h.simulator.mails) == 1
    assert "loyalty_welcome: SFMC had queued this messageKey before; not sent again" in outcome.notes


def test_an_outage_is_retried_and_a_replay_sends_nothing_already_done_again() -> None:
    h = harness()
    h.simulator.set_fault(Fault.from_document({"status": 503, "calls": ["asyncUpsert"]}))
    message = inbound(registration())
    first = h.deliver(message)[message.message_id]
    assert first.result is Result.RETRY
    assert first.error == "asyncUpsert: 503 simulated fault 503"
    h.simulator.set_fault(None)
    again = inbound(registration(), completed=frozenset(first.completed))
    assert h.deliver(again)[message.message_id].result is Result.DELIVERED
    assert len(h.calls("sendEmail")) == 1  # the mail and the journey were done the first time
    assert len(h.simulator.journeys) == 1


def test_a_journey_entry_whose_answer_was_lost_is_not_sent_again_automatically() -> None:
    h = harness()
    h.simulator.set_fault(Fault.from_document({"status": 502, "mode": "lose-answer", "calls": ["journeyEvent"]}))
    message = inbound(registration())
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.FAILED
    assert "SFMC may have acted on it, and it does not deduplicate this call" in (outcome.error or "")
    assert len(h.calls("journeyEvent")) == 1


def test_an_expired_token_is_renewed_and_the_call_sent_again_once() -> None:
    h = harness()
    h.deliver(inbound(registration("M-1")))
    assert h.simulator.tokens_issued == 1  # one token for the three calls
    h.simulator.tokens.clear()  # SFMC no longer takes it
    message = inbound(registration("M-2", "bo@example.com"))
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    assert h.simulator.tokens_issued == 2
    assert [r["status"] for r in h.calls("sendEmail")] == [202, 401, 202]


def test_a_member_with_no_known_email_fails_saying_so() -> None:
    h = harness()
    event = example_event("MEMBER_TIER", memberId="M-unknown")
    message = inbound(event)
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.FAILED
    assert outcome.error == "no email is known for the member: no event of theirs has carried one"


def test_rows_of_one_member_coalesce_to_the_newest_values_and_an_older_value_never_overwrites() -> None:
    h = harness()
    older = example_event("MEMBER_PROFILE_UPDATE", eventId="p-1", memberId="M-1", occurredAt="2026-12-01T10:00:00Z")
    newer = example_event("MEMBER_PROFILE_UPDATE", eventId="p-2", memberId="M-1", occurredAt="2026-12-01T11:00:00Z")
    older["data"] = {"profile": {"city": "Paris"}}
    newer["data"] = {"profile": {"city": "Ottawa"}}
    h.deliver(inbound(newer), inbound(older))
    [rows] = h.calls("asyncUpsert")
    assert rows["body"] == {"items": [{"MemberId": "M-1", "City": "Ottawa"}]}
    late = h.deliver(inbound(older))  # SQS brings the older one again, later
    assert h.calls("asyncUpsert")[-1]["body"] == {"items": [{"MemberId": "M-1"}]}
    assert "members.City: a newer value was delivered; not sent" in late[inbound(older).message_id].notes


def test_a_send_sfmc_did_not_make_and_a_refused_row_reach_the_audit_trail_as_late_failures() -> None:
    h = harness()
    h.simulator.unsubscribed.add("M-1")
    h.simulator.invalid_values.add("Bo")
    mail = inbound(registration("M-1"))
    row = inbound(registration("M-2", "bo@example.com", firstName="Bo"))
    assert {o.result for o in h.deliver(mail, row).values()} == {Result.DELIVERED}  # 202: queued
    report = h.poll()
    assert sorted((f.message_id, f.error) for f in report.failures) == sorted(
        [
            (mail.message_id, "SFMC did not send the email: 1 Unsubscribed"),
            (row.message_id, "SFMC refused the data extension row: 10002: Invalid value for a column"),
        ]
    )
    assert [r["path"] for r in h.calls("emailStatus")] == [
        f"/rest/messaging/v1/email/messages/{client.message_key(m.message_id, 'loyalty_welcome')}" for m in (mail, row)
    ]
    assert h.poll().failures == []  # each result applied once


def test_an_event_type_the_configuration_does_not_map_is_skipped_saying_so() -> None:
    document = sample_config_document()
    del document["events"]["BADGE_AWARD"]
    h = harness(document)
    message = inbound(example_event("BADGE_AWARD"))
    outcome = h.deliver(message)[message.message_id]
    assert (outcome.result, outcome.notes) == (Result.SKIPPED, ["BADGE_AWARD is not mapped in the configuration"])
    assert h.simulator.requests == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d["events"]["MEMBER_TIER"]["email"]["attributes"].update({"X": "badgeName"}),
            "events.MEMBER_TIER: email.attributes.X: MEMBER_TIER offers no value 'badgeName'",
        ),
        (
            lambda d: d["dataExtensions"]["tiers"].update({"primaryKey": ["Nope"]}),
            "dataExtensions.tiers.primaryKey: Nope must be among its columns",
        ),
        (
            lambda d: d["events"]["MEMBER_TIER"].update({"dataExtensions": ["nope"]}),
            "events.MEMBER_TIER.dataExtensions: nope is not among dataExtensions",
        ),
        (
            lambda d: d["dataExtensions"]["tiers"]["columns"].update({f"C{i}": "memberId" for i in range(49)}),
            "dataExtensions.tiers.columns: Dictionary should have at most 50 items after validation, not more",
        ),
    ],
)
def test_the_configuration_names_each_problem_by_its_path(change: Any, problem: str) -> None:
    document = sample_config_document()
    change(document)
    with pytest.raises(ConfigError) as refused:
        parse_config(document)
    assert problem in refused.value.problems


def test_the_local_double_serves_the_shared_control_surface() -> None:
    double = LOCAL_DOUBLE.make(sample_config_document())
    assert double.handle("POST", "/faults", {}, b'{"status": 503}').status == 204
    assert double.handle("DELETE", "/faults", {}, b"").status == 204
    assert double.handle("GET", "/requests", {}, b"").body == []
    assert double.handle("POST", "/unsubscribed", {}, b'{"contactKeys": ["M-1"]}').status == 204


def test_the_sfmc_connector_keeps_the_connector_contract() -> None:
    events = [registration("M-c")] + [example_event(t, memberId="M-c") for t in MANIFEST.event_types[1:]]
    ConnectorContract(lambda: harness().connector, events, MANIFEST).check()
