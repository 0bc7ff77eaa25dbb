"""The rest of the seed's syndication to Optimove: households, personalized offers (attribute slots and a
real-time event), vouchers, points transfers (a mail to each member, in each one's language), purchases
and a game earned; what each sends, and what it does at the edges."""

from __future__ import annotations

from typing import Any

from connectors.optimove.tests.harness import harness, inbound
from dig_connector_kit.model import Result
from dig_connector_kit.ports import MemberContact
from dig_contracts.examples import example_event


def attributes(h: Any) -> dict[str, str]:
    [call] = h.calls("UpdateCustomerAttributes")
    [customer] = call["body"]["CustomerNewAttributesValuesList"]
    return {a["RealFieldName"]: a["Value"] for a in customer["Attributes"]}


def test_an_offer_slot_with_no_offer_now_is_cleared_and_offers_beyond_the_slots_are_noted() -> None:
    h = harness()
    event = example_event("OFFERS_ASSIGNED")
    event["data"]["offers"] = event["data"]["offers"][:1]
    [outcome] = h.deliver(inbound(event)).values()
    assert outcome.result is Result.DELIVERED
    sent = attributes(h)
    assert (sent["OFFER_1_ID"], sent["OFFER_2_ID"], sent["OFFER_2_NAME"], sent["OFFER_2_VALID_TO"]) == (
        "OFF-77",
        "",
        "",
        "",
    )
    assert sent["OFFER_COUNT"] == "1"
    h = harness()
    event = example_event("OFFERS_ASSIGNED", eventId="evt-offers-3")
    event["data"]["offers"] = [event["data"]["offers"][0] | {"offerId": f"OFF-{i}"} for i in range(3)]
    [outcome] = h.deliver(inbound(event)).values()
    assert "3 offers: the first 2 sent (the configured slots)" in outcome.notes


def test_a_household_mail_goes_on_the_changes_configured_only() -> None:
    h = harness()
    event = example_event("MEMBER_HOUSEHOLD_CHANGED")
    event["data"]["change"] = "LEFT"
    h.deliver(inbound(event))
    assert h.calls("SendTransactionalMail") == []
    assert attributes(h)["HOUSEHOLD_ID"] == "HH-5501"


def test_a_transfer_mails_each_member_once_and_a_recipient_without_an_email_is_named() -> None:
    h = harness()
    h.contacts.contacts["M-100001"] = MemberContact(email="ada@example.com", seen_at="2026-01-01")
    [waited] = h.deliver(inbound(example_event("POINTS_TRANSFERRED"))).values()
    assert waited.result is Result.RETRY  # held once, for an email on its way
    assert waited.hold_seconds
    message = inbound(example_event("POINTS_TRANSFERRED"), completed=frozenset(waited.completed))
    [outcome] = h.deliver(message).values()
    assert outcome.result is Result.FAILED
    assert outcome.error is not None
    assert "no email is known for member M-100002" in outcome.error
    assert [m["body"]["TemplateID"] for m in h.calls("SendTransactionalMail")] == [507]
    # ES Loyalty sends the recipient's email later; a replay mails the recipient, never the sender again.
    h.contacts.contacts["M-100002"] = MemberContact(email="grace@example.com", locale="fr-CA", seen_at="2026-12-03")
    replay = inbound(example_event("POINTS_TRANSFERRED"), completed=frozenset(waited.completed | outcome.completed))
    [again] = h.deliver(replay).values()
    assert again.result is Result.DELIVERED
    mails = h.calls("SendTransactionalMail")
    assert [m["body"]["TemplateID"] for m in mails] == [507, 508]
    assert mails[1]["body"]["Recipients"][0]["Email"] == "grace@example.com"


def test_the_recipients_envelope_gives_the_senders_mail_its_address_from_the_contact_store() -> None:
    h = harness()
    h.contacts.contacts["M-100001"] = MemberContact(email="ada@example.com", locale="de-DE", seen_at="2026-01-01")
    h.contacts.contacts["M-100002"] = MemberContact(email="grace@example.com", seen_at="2026-01-01")
    event = example_event("POINTS_TRANSFERRED", memberId="M-100002")
    [outcome] = h.deliver(inbound(event)).values()
    assert outcome.result is Result.DELIVERED
    by_template = {m["body"]["TemplateID"]: m["body"]["Recipients"][0] for m in h.calls("SendTransactionalMail")}
    assert by_template[507]["Email"] == "ada@example.com"
    assert {p["Tag"]: p["Value"] for p in by_template[507]["Personalizations"]}["POINTS"] == "1.500"  # de-DE
    assert by_template[508]["Email"] == "grace@example.com"
