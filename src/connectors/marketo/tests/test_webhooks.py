"""The return path from Marketo: a trigger campaign's unsubscribe webhook becomes one
MEMBER_CONSENT_CHANGED for the member, whichever token encoding Marketo used; sent twice, one event."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.marketo.manifest import MANIFEST, UNSUBSCRIBES_WEBHOOK
from connectors.marketo.tests.harness import harness
from dig_connector_kit.ports import MemberContact
from dig_contracts.inbound import MemberConsentChanged, WebhookReceipt

RECEIVED = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def receipt(body: str, receipt_id: str = "req-1", at: datetime = RECEIVED) -> WebhookReceipt:
    return WebhookReceipt(connector="marketo", source="unsubscribes", receiptId=receipt_id, receivedAt=at, body=body)


def test_the_manifest_declares_a_secret_header_webhook_and_what_it_emits() -> None:
    assert MANIFEST.webhook("unsubscribes") == UNSUBSCRIBES_WEBHOOK
    assert (UNSUBSCRIBES_WEBHOOK.verification, UNSUBSCRIBES_WEBHOOK.header) == ("token", "X-DIG-Webhook-Token")
    assert [t.value for t in MANIFEST.emits] == ["MEMBER_CONSENT_CHANGED"]


def test_an_unsubscribe_naming_the_member_is_one_consent_change() -> None:
    h = harness()
    reading = h.connector.read_webhook(
        receipt('{"leadId": 318581, "memberId": "M-7", "email": "ada@example.com", "unsubscribed": true}')
    )
    [event] = reading.events
    assert event.model_dump(mode="json", exclude={"eventId"}) == {
        "eventType": "MEMBER_CONSENT_CHANGED",
        "schemaVersion": "1",
        "occurredAt": "2026-12-06T09:30:00Z",
        "memberId": "M-7",
        "programId": None,
        "origin": {
            "connector": "marketo",
            "source": "unsubscribes",
            "providerReference": "lead 318581",
            "receiptId": "req-1",
        },
        "data": {"channel": "EMAIL", "consent": "OPTED_OUT", "reason": "UNSUBSCRIBE"},
    }
    # Marketo sending it again (another request, the same day) is the same event.
    again = h.connector.read_webhook(
        receipt('{"leadId": 318581, "memberId": "M-7", "unsubscribed": true}', receipt_id="req-2")
    )
    assert again.events[0].eventId == event.eventId


def test_a_form_encoded_resubscribe_by_email_resolves_the_member_through_the_contact_store() -> None:
    h = harness()
    h.contacts.keep({"M-9": MemberContact(email="bo@example.com", seen_at="t")}, {})
    reading = h.connector.read_webhook(receipt("leadId=42&email=Bo%40Example.com&unsubscribed=false"))
    [event] = reading.events
    assert isinstance(event, MemberConsentChanged)
    assert (event.memberId, event.data.consent, event.data.reason) == ("M-9", "OPTED_IN", "RESUBSCRIBE")


def test_an_address_no_member_has_is_counted_not_guessed_and_a_bad_template_said() -> None:
    h = harness()
    unknown = h.connector.read_webhook(receipt('{"leadId": 5, "email": "who@example.com", "unsubscribed": "true"}'))
    assert (unknown.events, unknown.unmatched, unknown.notes) == ([], 1, ["lead 5: no member DIG knows"])
    broken = h.connector.read_webhook(receipt('{"leadId": 5, "unsubscribed": "{{lead.Unsubscribed}}"}'))
    assert broken.events == []
    assert broken.notes == ["the webhook names no lead or no Unsubscribed value: check its payload template"]
