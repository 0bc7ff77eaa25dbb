"""Each event type's exact Optimove requests (golden files), localized money and dates, and the
connector's own card-number guard."""

from __future__ import annotations

import json
import os
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.optimove.config import Attribute, AttributeType, parse_config
from connectors.optimove.manifest import MANIFEST
from connectors.optimove.mapping import ConversionError, attribute_value, plan, tag_value, unique_message_id
from connectors.optimove.tests.harness import harness, inbound, sample_config_document
from dig_connector_kit import formatting
from dig_connector_kit.ports import MemberContact
from dig_contracts.events import EventType, Money
from dig_contracts.examples import example_event

GOLDEN = Path(__file__).resolve().parent / "golden"


def requests_for(document: dict[str, Any]) -> list[dict[str, Any]]:
    h = harness()
    # The member registered earlier with this email: the contact store holds it for events without one.
    h.contacts.contacts[document["memberId"]] = MemberContact(email="ada@example.com", seen_at="2026-01-01")
    # A transfer's other member, known from their own events: mailed at their address, in their language.
    h.contacts.contacts["M-100002"] = MemberContact(email="grace@example.com", locale="fr-CA", seen_at="2026-01-01")
    outcome = h.deliver(inbound(document))
    assert [o.result.value for o in outcome.values()] == ["DELIVERED"], outcome
    return [{"call": r["call"], "path": r["path"], "body": r["body"]} for r in h.calls()]


@pytest.mark.parametrize("event_type", MANIFEST.event_types)
def test_each_event_type_produces_exactly_the_golden_requests(event_type: EventType) -> None:
    produced = requests_for(example_event(event_type))
    golden = GOLDEN / f"{event_type.value}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(produced, indent=2, ensure_ascii=False) + "\n")
    assert produced == json.loads(golden.read_text())


def test_the_redemption_mail_is_localized_for_fr_ca() -> None:
    [mail] = [r for r in requests_for(example_event("REDEMPTION")) if r["call"] == "SendTransactionalMail"]
    tags = {t["Tag"]: t["Value"] for t in mail["body"]["Recipients"][0]["Personalizations"]}
    assert tags["REWARD_VALUE"] == "1\u00a0234,50\u00a0$"  # 1 234,50 $
    assert tags["POINTS_REDEEMED"] == "12\u00a0500"
    assert tags["REDEEMED_ON"] == "21 novembre 2026"
    assert mail["body"]["UniqueMessageID"] == "dig:501:evt-red-0001"


@pytest.mark.parametrize(
    ("locale", "money", "points", "day"),
    [
        ("en-US", "CA$1,234.50", "12,500", "November 21, 2026"),
        ("en-CA", "$1,234.50", "12,500", "November 21, 2026"),
        ("fr-CA", "1\u00a0234,50\u00a0$", "12\u00a0500", "21 novembre 2026"),
        ("de-DE", "1.234,50\u00a0CA$", "12.500", "21. November 2026"),
    ],
)
def test_money_numbers_and_dates_are_written_for_the_members_locale(
    locale: str, money: str, points: str, day: str
) -> None:
    babel_locale, note = formatting.resolve_locale(locale, "en-US")
    assert note is None
    assert tag_value(Money(amount="1234.50", currency="CAD"), babel_locale, "long") == money
    assert tag_value(12500, babel_locale, "long") == points
    assert tag_value(datetime.fromisoformat("2026-11-21T10:02:00-05:00"), babel_locale, "long") == day


def test_a_date_keeps_the_members_own_day_whatever_utc_says() -> None:
    late_evening = datetime.fromisoformat("2026-11-21T23:30:00-05:00")  # already the 22nd in UTC
    babel_locale, _ = formatting.resolve_locale("en-US", "en-US")
    assert tag_value(late_evening, babel_locale, "long") == "November 21, 2026"


def test_an_unknown_event_locale_falls_back_to_the_configured_one_with_a_note() -> None:
    document = example_event("REDEMPTION", locale="tlh-QQ")
    planned = plan(inbound(document), parse_config(sample_config_document()))
    assert planned.mails[0].tags["REWARD_VALUE"] == "CA$1,234.50"
    assert "locale tlh-QQ is unknown; formatted for en-US" in planned.notes


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("Ottawa", AttributeType.STRING, "Ottawa"),
        (True, AttributeType.STRING, "true"),
        (3, AttributeType.NUMBER, "3"),
        ("2.50", AttributeType.NUMBER, "2.5"),
        (Decimal("1234.5000"), AttributeType.NUMBER, "1234.5"),
        (False, AttributeType.BOOLEAN, "false"),
        ("TRUE", AttributeType.BOOLEAN, "true"),
        ("1990-12-10", AttributeType.DATE, "1990-12-10"),
        (datetime.fromisoformat("2026-11-21T10:00:00-05:00"), AttributeType.DATE, "2026-11-21"),
        (date(2026, 1, 2), AttributeType.DATE, "2026-01-02"),
    ],
)
def test_attribute_values_convert_to_their_type(value: object, kind: AttributeType, expected: str) -> None:
    en_us, _ = formatting.resolve_locale("en-US", "en-US")
    assert attribute_value(value, Attribute(field="F", type=kind), en_us) == expected


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("abc", AttributeType.NUMBER, "is not a number; F is a number"),
        (True, AttributeType.NUMBER, "is a boolean; F is a number"),
        ("yes", AttributeType.BOOLEAN, "is not true or false; F is a boolean"),
        ("31/12/1990", AttributeType.DATE, "is not a date (YYYY-MM-DD); F is a date"),
        ("x" * 256, AttributeType.STRING, "is 256 characters; F takes at most 255"),
    ],
)
def test_a_value_that_does_not_convert_is_refused_with_a_reason(
    value: object, kind: AttributeType, message: str
) -> None:
    en_us, _ = formatting.resolve_locale("en-US", "en-US")
    with pytest.raises(ConversionError, match=re.escape(message)):
        attribute_value(value, Attribute(field="F", type=kind), en_us)


def test_conversion_errors_fail_the_message_per_field_and_send_nothing() -> None:
    document = example_event("MEMBER_PROFILE_UPDATE")
    document["data"]["profile"] = {"birthDate": "31/12/1990", "householdSize": "many", "city": "Ottawa"}
    h = harness()
    [outcome] = h.deliver(inbound(document)).values()
    assert outcome.result.value == "FAILED"
    assert outcome.error == (
        "data.profile.birthDate is not a date (YYYY-MM-DD); BIRTH_DATE is a date; "
        "data.profile.householdSize is not a number; HOUSEHOLD_SIZE is a number"
    )
    assert h.calls() == []


def test_unmapped_profile_fields_are_noted_not_sent() -> None:
    document = example_event("MEMBER_PROFILE_UPDATE")
    document["data"]["profile"] = {"city": "Ottawa", "shoeSize": 42}
    h = harness()
    [outcome] = h.deliver(inbound(document)).values()
    assert outcome.result.value == "DELIVERED"
    assert "unmapped data.profile fields not sent: shoeSize" in outcome.notes
    [call] = h.calls("UpdateCustomerAttributes")
    assert call["body"]["CustomerNewAttributesValuesList"][0]["Attributes"] == [
        {"RealFieldName": "CITY", "Value": "Ottawa"},
        {"RealFieldName": "EMD_FAVORITE_STORE", "Value": "Bank St"},
    ]


def test_an_event_type_without_a_mapping_is_skipped_with_the_reason() -> None:
    document = sample_config_document()
    del document["events"]["MEMBER_TIER"]
    h = harness(document)
    [outcome] = h.deliver(inbound(example_event("MEMBER_TIER"))).values()
    assert outcome.result.value == "SKIPPED"
    assert outcome.notes == ["no Optimove mapping is configured for MEMBER_TIER"]
    assert h.calls() == []


def test_the_connector_refuses_to_send_anything_that_looks_like_a_card_number() -> None:
    # The API refuses these; a replayed old message, or a bad mapping, must still not leak one.
    document = example_event("PARTNER_CARD_LINK")
    document["data"]["partner"] = "Bank 4111 1111 1111 1111"
    h = harness()
    [outcome] = h.deliver(inbound(document)).values()
    assert outcome.result.value == "FAILED"
    assert outcome.error == (
        "refused to send what looks like a card number in: attribute PARTNER_NAME, mail tag PARTNER"
    )
    assert "4111" not in outcome.error
    assert h.calls() == []


def test_unique_message_id_is_deterministic_and_within_optimoves_limit() -> None:
    assert unique_message_id("evt-1", 501) == unique_message_id("evt-1", 501) == "dig:501:evt-1"
    assert unique_message_id("evt-1", 502) != unique_message_id("evt-1", 501)
    assert len(unique_message_id("e" * 300, 501)) <= 254
