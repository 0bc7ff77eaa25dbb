"""SFMC's SMS (only to members whose SMS consent DIG knows), issued vouchers, and the return path:
ENS unsubscribes to ES Loyalty and the callback's verification."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from connectors.sfmc import client
from connectors.sfmc.local.simulator import ens_unsubscribes
from connectors.sfmc.tests.harness import harness
from dig_connector_kit.model import Result
from dig_connector_kit.ports import MemberContact
from dig_connector_kit.testing import Fault, inbound
from dig_contracts.examples import example_event
from dig_contracts.inbound import WebhookReceipt, inbound_event_id

SIGNATURE_KEY = "ens-signature-key"


def sms_opt_in(member: str = "M-1", opt_in: bool = True, at: str = "2026-11-21T09:17:00-05:00") -> dict[str, Any]:
    event = example_event("OPT_IN_SMS", eventId=f"sms-{member}-{opt_in}-{at}", memberId=member, occurredAt=at)
    event["data"]["optIn"] = opt_in
    return event


def redemption(member: str = "M-1") -> dict[str, Any]:
    return example_event("REDEMPTION", eventId=f"red-{member}", memberId=member)


def test_an_sms_goes_to_a_member_who_opted_in_in_the_same_batch_with_its_own_key_and_no_resubscribe() -> None:
    h = harness()
    consent, message = inbound(sms_opt_in()), inbound(redemption())
    outcomes = h.deliver(consent, message)
    assert outcomes[message.message_id].result is Result.DELIVERED
    assert outcomes[message.message_id].completed >= {"email", "sms"}
    [send] = h.calls("sendSms")
    assert (send["method"], send["path"]) == ("POST", "/rest/messaging/v1/sms/messages/")
    assert send["body"] == {
        "definitionKey": "loyalty_redemption_sms",
        "recipients": [
            {
                "contactKey": "M-1",
                "to": "14165550123",
                "messageKey": client.message_key(message.message_id, "sms:loyalty_redemption_sms"),
                "attributes": {"RewardName": "Carte-cadeau", "PointsBalance": "800"},
            }
        ],
        "subscriptions": {"resubscribe": False},
    }
    # The opt-in itself writes the consent row.
    [consent_row] = [r for r in h.calls("asyncUpsert") if "key:DIG_SmsConsent" in r["path"]]
    assert consent_row["body"]["items"] == [{"MemberId": "M-1", "Mobile": "+14165550123", "OptIn": "true"}]


def test_an_sms_without_a_known_consent_or_after_an_opt_out_is_skipped_saying_why() -> None:
    h = harness()
    unknown = inbound(redemption("M-1"))
    outcome = h.deliver(unknown)[unknown.message_id]
    assert outcome.result is Result.DELIVERED  # the mail went; only the SMS was not for SFMC to send
    assert "SMS not sent: no SMS consent is known to DIG for the member (no OPT_IN_SMS)" in outcome.notes
    h.contacts.keep({"M-2": MemberContact().with_sms_consent("+14165550123", False, "2026-11-21T14:17:00.000000Z")}, {})
    voucher = example_event("VOUCHER_ISSUED", memberId="M-2")
    opted_out = inbound(voucher)
    outcome = h.deliver(opted_out)[opted_out.message_id]
    assert "SMS not sent: the member opted out of SMS (2026-11-21T14:17:00.000000Z)" in outcome.notes
    assert h.calls("sendSms") == []


def test_a_message_whose_only_operation_is_an_sms_without_consent_is_skipped() -> None:
    document = json.loads(json.dumps(harness().config.model_dump(mode="json", exclude_none=True)))
    document["events"]["REDEMPTION"] = {"sms": document["events"]["REDEMPTION"]["sms"]}
    h = harness(document)
    message = inbound(redemption())
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.SKIPPED
    assert outcome.notes == ["SMS not sent: no SMS consent is known to DIG for the member (no OPT_IN_SMS)"]
    assert h.calls("sendSms") == []
    assert h.calls("sendEmail") == []


def test_an_sms_whose_answer_was_lost_goes_out_once_and_one_not_sent_fails_late_with_sfmcs_code() -> None:
    h = harness()
    h.simulator.set_fault(Fault.from_document({"status": 504, "mode": "lose-answer", "calls": ["sendSms"], "times": 1}))
    h.simulator.sms_not_sent["14165550123"] = ("47", "Mobile Address not found")
    consent, message = inbound(sms_opt_in()), inbound(redemption())
    outcome = h.deliver(consent, message)[message.message_id]
    assert outcome.result is Result.DELIVERED
    assert [a.status for a in outcome.attempts if a.call == "sendSms"] == ["504", "202"]
    assert len(h.simulator.sms) == 1
    report = h.poll()
    [failure] = [f for f in report.failures if f.message_id == message.message_id]
    assert failure.error == "SFMC did not send the SMS: 47 Mobile Address not found"
    assert [r["path"] for r in h.calls("smsStatus")] == [
        f"/rest/messaging/v1/sms/messages/{client.message_key(message.message_id, 'sms:loyalty_redemption_sms')}"
    ]


def test_an_older_opt_out_arriving_late_does_not_undo_a_newer_opt_in() -> None:
    h = harness()
    newer, older = sms_opt_in(at="2026-11-22T09:00:00Z"), sms_opt_in(opt_in=False, at="2026-11-20T09:00:00Z")
    h.deliver(inbound(newer))
    h.deliver(inbound(older))
    assert h.contacts.get(["M-1"])["M-1"].sms_number == "+14165550123"


def test_an_issued_voucher_is_mailed_and_written_to_the_vouchers_data_extension() -> None:
    h = harness()
    h.contacts.keep({"M-100001": MemberContact(email="ada@example.com", seen_at="t")}, {})
    message = inbound(example_event("VOUCHER_ISSUED"))
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.DELIVERED
    [send] = h.calls("sendEmail")
    assert send["body"]["definitionKey"] == "loyalty_voucher"
    assert send["body"]["recipients"][0]["attributes"] == {
        "VoucherName": "10 $ de rabais",
        "Code": "ACME-X7K2-PQ9M",
        "Value": "10,00\xa0$",  # fr-CA, the event's locale
        "ExpiresOn": "31 décembre 2026",
    }
    [rows] = [r for r in h.calls("asyncUpsert") if "key:DIG_Vouchers" in r["path"]]
    assert rows["body"]["items"] == [
        {
            "VoucherId": "V-70001",
            "MemberId": "M-100001",
            "Name": "10 $ de rabais",
            "Code": "ACME-X7K2-PQ9M",
            "Amount": "10.00",
            "Currency": "CAD",
            "ExpiresOn": "31 décembre 2026",
            "OfferId": "OFF-2026-12",
        }
    ]


# --- the return path -----------------------------------------------------------------------------


def receipt(body: bytes | str, handshake: bool = False, receipt_id: str = "req-1") -> WebhookReceipt:
    return WebhookReceipt(
        connector="sfmc",
        source="ens",
        receiptId=receipt_id,
        receivedAt=datetime(2026, 12, 7, tzinfo=UTC),
        body=body.decode() if isinstance(body, bytes) else body,
        handshake=handshake,
    )


def test_ens_unsubscribes_become_consent_events_by_subscriber_key_or_by_address_and_unknowns_are_counted() -> None:
    h = harness()
    h.contacts.keep(
        {
            "M-1": MemberContact(email="ada@example.com", seen_at="t"),
            "M-2": MemberContact(email="bob@example.com", seen_at="t"),
        },
        {},
    )
    body, _headers = ens_unsubscribes(
        SIGNATURE_KEY,
        [
            {"subscriberKey": "M-1", "to": "ada@example.com"},
            {"to": "Bob@Example.com"},  # no subscriberKey: the address finds the member
            {"subscriberKey": "someone-else", "to": "nobody@example.com"},
        ],
        clock=lambda: 1_800_000_000.0,
    )
    reading = h.connector.read_webhook(receipt(body))
    assert [(e.memberId, e.data.consent.value, e.data.reason.value) for e in reading.events] == [  # type: ignore[attr-defined]
        ("M-1", "OPTED_OUT", "UNSUBSCRIBE"),
        ("M-2", "OPTED_OUT", "UNSUBSCRIBE"),
    ]
    first = reading.events[0]
    assert first.occurredAt == datetime.fromtimestamp(1_800_000_000 - 60, UTC)
    assert first.origin.providerReference == "ENS 1722201.69238.15607.178363503"
    assert first.eventId == inbound_event_id("sfmc", "unsubscribe", "1722201.69238.15607.178363503", "1799999940000")
    assert reading.unmatched == 1
    # ENS delivers at least once: the same batch again is the same events.
    assert [e.eventId for e in h.connector.read_webhook(receipt(body, receipt_id="req-2")).events] == [
        e.eventId for e in reading.events
    ]


def test_ens_callback_verification_is_completed_only_for_the_configured_callback() -> None:
    h = harness()
    callback = h.simulator.create_callback("https://dig.example/v1/inbound/sfmc/ens", "dig-local-ens-callback")
    handshake = {"callbackId": callback["callbackId"], "verificationKey": callback["verificationKey"]}
    reading = h.connector.read_webhook(receipt(json.dumps(handshake), handshake=True))
    assert reading.events == []
    assert reading.notes == ["ENS callback dig-local-ens-callback verified"]
    [verify] = h.calls("ensVerify")
    assert (verify["method"], verify["path"], verify["body"]) == ("POST", "/rest/platform/v1/ens-verify", handshake)
    assert h.simulator.callbacks["dig-local-ens-callback"]["verified"] is True
    other = {"callbackId": "not-ours", "verificationKey": "k"}
    ignored = h.connector.read_webhook(receipt(json.dumps(other), handshake=True))
    assert ignored.notes == ["ENS verification for callback not-ours, not the configured one: ignored"]
    assert len(h.calls("ensVerify")) == 1
