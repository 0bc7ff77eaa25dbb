"""The event envelope and the per-type schemas: what is accepted, what is refused and why."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dig_api.errors import validation_details
from dig_api.ingest import EVENT_TAGS
from dig_contracts.bus import message_id_for
from dig_contracts.events import EventType, parse_event
from dig_contracts.examples import all_examples, example_event


def errors_of(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as raised:
        parse_event(document)
    return [
        (d.field, d.rule)
        for d in validation_details(raised.value.errors(include_input=False), event_tags=EVENT_TAGS, document=document)
    ]


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_example_is_a_valid_event(event_type: EventType) -> None:
    event = parse_event(example_event(event_type))
    assert event.eventType == event_type


def test_the_profile_update_of_the_walking_skeleton_parses() -> None:
    event = parse_event(example_event("MEMBER_PROFILE_UPDATE"))
    assert event.data.profile == {"firstName": "Ada", "city": "Ottawa", "birthDate": "1990-12-10"}
    assert event.memberId == "M-100001"


def test_an_unknown_event_type_is_refused_on_the_eventType_field() -> None:
    [(field, rule)] = errors_of(example_event("MEMBER_TIER", eventType="MEMBER_DELETED"))
    assert field == "eventType"
    assert "MEMBER_PROFILE_UPDATE" in rule


def test_a_missing_event_type_is_refused_as_required() -> None:
    document = example_event("MEMBER_TIER")
    del document["eventType"]
    assert errors_of(document) == [("eventType", "is required")]


def test_unknown_top_level_keys_are_refused_in_the_envelope_and_in_data() -> None:
    document = example_event("OPT_IN_EMAIL", channel="email")
    document["data"]["optInn"] = True
    fields = {field for field, _ in errors_of(document)}
    # Named by position in their object, never echoed: a client's key can be anything.
    assert fields == {
        f"<key {list(document).index('channel') + 1}>",
        f"<key {len(document['data'])}>".join(["data.", ""]),
    }


def test_every_violated_field_is_listed() -> None:
    document = example_event("REDEMPTION", occurredAt="2026-11-21T10:00:00")  # no offset
    document["data"]["pointsRedeemed"] = 0
    document["data"]["reward"]["value"] = {"amount": "12,50", "currency": "XYZ"}
    fields = [field for field, _ in errors_of(document)]
    assert fields == [
        "occurredAt",
        "data.pointsRedeemed",
        "data.reward.value.amount",
        "data.reward.value.currency",
    ]


def test_numbers_given_as_strings_are_refused_not_coerced() -> None:
    document = example_event("REDEMPTION")
    document["data"]["pointsBalance"] = "800"
    assert [f for f, _ in errors_of(document)] == ["data.pointsBalance"]


def test_a_timestamp_must_be_an_rfc3339_string_with_an_offset() -> None:
    assert [f for f, _ in errors_of(example_event("MEMBER_TIER", occurredAt=1763719200))] == ["occurredAt"]
    assert (
        parse_event(example_event("MEMBER_TIER", occurredAt="2026-11-21T12:00:00Z")).occurredAt.utcoffset() is not None
    )


@pytest.mark.parametrize("locale", ["en-US", "fr-CA", "de", "zh-Hant-TW", "es-419"])
def test_bcp47_locales_are_accepted(locale: str) -> None:
    assert parse_event(example_event("MEMBER_TIER", locale=locale)).locale == locale


@pytest.mark.parametrize("locale", ["fr_CA", "english", "FR-ca", ""])
def test_malformed_locales_are_refused(locale: str) -> None:
    assert [f for f, _ in errors_of(example_event("MEMBER_TIER", locale=locale))] == ["locale"]


def test_a_profile_update_needs_at_least_one_field() -> None:
    document = example_event("MEMBER_PROFILE_UPDATE")
    document["data"]["profile"] = {}
    assert [f for f, _ in errors_of(document)] == ["data.profile"]


def test_last4_is_exactly_four_digits() -> None:
    document = example_event("PARTNER_CARD_LINK")
    document["data"]["last4"] = "42424"
    assert [f for f, _ in errors_of(document)] == ["data.last4"]


@given(st.text(min_size=1, max_size=128, alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E)))
def test_any_printable_event_id_of_1_to_128_characters_is_accepted(event_id: str) -> None:
    assert parse_event(example_event("MEMBER_TIER", eventId=event_id)).eventId == event_id


@given(st.one_of(st.just(""), st.text(min_size=129, max_size=200, alphabet="ab"), st.just("has space")))
def test_event_ids_outside_the_contract_are_refused(event_id: str) -> None:
    assert [f for f, _ in errors_of(example_event("MEMBER_TIER", eventId=event_id))] == ["eventId"]


@given(st.decimals(min_value=-(10**8) + 1, max_value=10**8 - 1, places=2, allow_nan=False, allow_infinity=False))
def test_decimal_amounts_are_accepted(amount: object) -> None:
    document = example_event("REDEMPTION")
    document["data"]["reward"]["value"]["amount"] = str(amount)
    assert str(parse_event(document).data.reward.value.decimal) == str(amount)


def test_the_message_id_is_derived_from_the_event_id() -> None:
    assert message_id_for("evt-1") == message_id_for("evt-1")
    assert message_id_for("evt-1") != message_id_for("evt-2")


def test_examples_cover_every_event_type() -> None:
    assert set(all_examples()) == set(EventType)


@pytest.mark.parametrize("number", ["4165550123", "+04165550123", "+1 416 555 0123", "+1234567890123456"])
def test_an_sms_opt_in_needs_an_e164_mobile_number(number: str) -> None:
    document = example_event("OPT_IN_SMS")
    document["data"]["mobileNumber"] = number
    assert [field for field, _ in errors_of(document)] == ["data.mobileNumber"]


def test_a_voucher_needs_an_id_a_name_and_a_code_reference_and_nothing_else() -> None:
    document = example_event("VOUCHER_ISSUED")
    document["data"] = {"voucherId": "V-1", "name": "10 off", "codeReference": "X-1"}
    assert parse_event(document).data.value is None
    del document["data"]["codeReference"]
    assert errors_of(document) == [("data.codeReference", "is required")]


@pytest.mark.parametrize(
    ("field", "value"),
    [("pointsRedeemed", 302220740261572820321735792394240), ("pointsBalance", 10**12)],
)
def test_whole_numbers_stop_at_twelve_digits_so_none_can_be_a_card_number(field: str, value: int) -> None:
    document = example_event("REDEMPTION")
    document["data"][field] = value
    assert [f for f, _ in errors_of(document)] == [f"data.{field}"]


def test_an_amount_has_at_most_twelve_digits_so_none_can_be_a_card_number() -> None:
    document = example_event("REDEMPTION")
    document["data"]["reward"]["value"]["amount"] = "411111111.1111"  # 4111111111111 would be a Visa number
    assert [f for f, _ in errors_of(document)] == ["data.reward.value.amount"]
    document["data"]["reward"]["value"]["amount"] = "99999999.9999"
    assert parse_event(document).data.reward.value.amount == "99999999.9999"


def test_a_payout_has_a_positive_amount_and_no_field_for_bank_or_card_details() -> None:
    document = example_event("PAYOUT_REQUESTED")
    for zero in ("0.00", "0", "00.0000", "-5.00"):
        document["data"]["amount"]["amount"] = zero
        assert [field for field, _ in errors_of(document)] == ["data.amount.amount"], zero
    for positive in ("0.01", "10", "0.0001", "99999999.9999"):
        document["data"]["amount"]["amount"] = positive
        assert parse_event(document).data.amount.amount == positive
    document = example_event("PAYOUT_REQUESTED")
    document["data"]["payee"]["iban"] = "GB82WEST12345698765432"
    assert [field for field, _ in errors_of(document)] == ["data.payee.<key 5>"]


def test_a_game_play_award_names_its_game_by_a_url_safe_key_and_asks_for_one_to_twenty_plays() -> None:
    document = example_event("GAME_PLAY_AWARDED")
    assert parse_event(document).data.plays == 3
    document["data"]["plays"] = 21
    document["data"]["campaign"] = "../admin"
    assert sorted(field for field, _ in errors_of(document)) == ["data.campaign", "data.plays"]
    document["data"]["plays"] = 0
    document["data"]["campaign"] = "holiday-spin"
    assert [field for field, _ in errors_of(document)] == ["data.plays"]


def test_a_points_transfer_is_between_two_members_one_of_whom_the_envelope_names() -> None:
    document = example_event("POINTS_TRANSFERRED")
    assert parse_event(document).data.points == 1500
    document["memberId"] = "M-999"
    assert errors_of(document) == [("data", "Value error, the envelope's memberId must be fromMemberId or toMemberId")]
    document = example_event("POINTS_TRANSFERRED")
    document["data"]["toMemberId"] = document["data"]["fromMemberId"]
    assert [field for field, _ in errors_of(document)] == ["data"]


def test_offers_assigned_hold_at_most_twenty_offers_and_none_is_a_valid_answer() -> None:
    document = example_event("OFFERS_ASSIGNED")
    offer = document["data"]["offers"][0]
    document["data"]["offers"] = [offer] * 21
    assert [field for field, _ in errors_of(document)] == ["data.offers"]
    document["data"]["offers"] = []
    assert parse_event(document).data.offers == []


def test_a_household_change_and_a_purchase_take_their_documented_fields_only() -> None:
    document = example_event("MEMBER_HOUSEHOLD_CHANGED")
    document["data"]["role"] = "OWNER"
    assert [field for field, _ in errors_of(document)] == ["data.role"]
    document = example_event("PURCHASE")
    document["data"]["cardNumber"] = "4111111111111111"
    assert [field for field, _ in errors_of(document)] == ["data.<key 6>"]


def test_the_values_each_type_offers_are_one_list_every_connectors_configuration_checks_against() -> None:
    from connectors.optimove.config import EVENT_SOURCES as OPTIMOVE
    from connectors.sfmc.config import EVENT_SOURCES as SFMC
    from dig_contracts.values import value_names

    assert {"rewardValue", "pointsBalance", "redeemedAt", "email"} <= value_names("REDEMPTION")
    assert value_names("MEMBER_PROFILE_UPDATE") == frozenset()  # its profile's own fields, any name
    assert all(OPTIMOVE[t] == value_names(t) for t in OPTIMOVE)
    assert all(SFMC[t] <= value_names(t) for t in SFMC)  # SFMC offers fewer (its own reasons), never others
