"""Configuration validation: each problem refused with a message that names it."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.optimove.config import ConfigError, parse_config
from connectors.optimove.manifest import MANIFEST
from connectors.optimove.tests.harness import sample_config_document
from dig_contracts.events import EventType


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    return raised.value.problems


def test_the_sample_configuration_is_valid_and_covers_every_event_type_the_connector_takes() -> None:
    config = parse_config(sample_config_document())
    assert all(config.events.for_type(t) is not None for t in MANIFEST.event_types)
    assert EventType.BADGE_AWARD not in MANIFEST.event_types  # not mappable to Optimove: not routed there


def test_more_than_50_custom_attributes_across_real_time_and_batch_is_refused() -> None:
    document = sample_config_document()
    # 36 real-time, and in batch 3 listed, 2 more the feed's customers data set fills, and 15: 56.
    document["batchAttributes"] += [f"BATCH_{i}" for i in range(15)]
    [problem] = problems(document)
    assert problem == (
        "56 custom attributes are mapped (36 real-time, 20 batch); "
        "Optimove allows at most 50 across the real-time and batch channels"
    )


def test_offer_slots_household_voucher_transfer_and_purchase_attributes_count_in_the_limit() -> None:
    document = sample_config_document()
    document["batchAttributes"] += [f"BATCH_{i}" for i in range(9)]  # 50: accepted
    assert parse_config(document) is not None
    slot = {"offerId": {"field": "OFFER_3_ID"}}
    document["events"]["OFFERS_ASSIGNED"]["slots"].append(slot)  # one slot more: 51
    assert problems(document) == [
        "51 custom attributes are mapped (37 real-time, 14 batch); "
        "Optimove allows at most 50 across the real-time and batch channels"
    ]
    document["events"]["OFFERS_ASSIGNED"]["slots"][-1] = {"colour": {"field": "OFFER_3_COLOUR"}}
    assert problems(document)[1] == (
        "events.OFFERS_ASSIGNED.slots[3].colour: an offer has no value 'colour' "
        "(known: name, offerId, reward, rewardValue, validFrom, validTo)"
    )


def test_exactly_50_custom_attributes_is_accepted() -> None:
    document = sample_config_document()
    document["batchAttributes"] += [f"BATCH_{i}" for i in range(9)]
    config = parse_config(document)
    assert config.batchFeed is not None
    batch = set(config.batchAttributes) | config.batchFeed.customer_attributes()
    assert len(config.realtime_fields()) + len(batch) == 50


def test_the_batch_feeds_customer_columns_count_in_the_limit_and_may_not_repeat_a_real_time_field() -> None:
    document = sample_config_document()
    columns = [{"source": "tier", "target": f"FEED_{i}"} for i in range(30)] + [{"source": "tier", "target": "TIER"}]
    document["batchFeed"] = {
        "dataSets": [{"name": "customers", "kind": "customers", "extract": "memberAccounts", "columns": columns}],
        "destination": {"bucket": "optimove-tenant-bucket"},
        "readinessTimeUtc": "05:00",
    }
    assert problems(document) == [  # 36 real-time and 3 + 31 batch, TIER in both: 69 attributes
        "69 custom attributes are mapped (36 real-time, 34 batch); "
        "Optimove allows at most 50 across the real-time and batch channels",
        "TIER: mapped both in real time and in batchFeed; the two channels need separate attributes",
    ]


def test_a_transactional_event_without_a_template_id_is_refused() -> None:
    document = sample_config_document()
    del document["events"]["REDEMPTION"]["mail"]
    assert problems(document) == [
        "events.REDEMPTION: a transactional event needs mail.templateId (the Optimove template to send)"
    ]


def test_a_mail_without_its_template_id_is_refused_by_path() -> None:
    document = sample_config_document()
    del document["events"]["MEMBER_TIER"]["mail"]["templateId"]
    assert problems(document) == ["events.MEMBER_TIER.mail.templateId: Field required"]


def test_one_optimove_field_mapped_twice_is_refused() -> None:
    document = sample_config_document()
    document["extendedDataAttributes"]["town"] = {"field": "CITY"}
    assert problems(document) == [
        "Optimove field CITY is mapped twice in profile and Extended Member Data mappings: "
        "profileAttributes.city, extendedDataAttributes.town"
    ]


def test_a_field_in_both_the_real_time_and_the_batch_channel_is_refused() -> None:
    document = sample_config_document()
    document["batchAttributes"].append("TIER")
    assert problems(document) == [
        "TIER: mapped both in real time and in batchAttributes; the two channels need separate attributes"
    ]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("locale", "xx-QQ", "locale: 'xx-QQ' is not a locale Babel knows (e.g. en-US, fr-CA, de-DE)"),
        ("currency", "ABC", "currency: 'ABC' is not an ISO 4217 currency in current use"),
    ],
)
def test_an_unknown_locale_or_currency_is_refused(key: str, value: str, expected: str) -> None:
    document = sample_config_document()
    document[key] = value
    assert problems(document) == [expected]


def test_a_mail_tag_from_a_value_the_event_does_not_have_is_refused() -> None:
    document = sample_config_document()
    document["events"]["REDEMPTION"]["mail"]["tags"]["CARD"] = "cardNumber"
    [problem] = problems(document)
    assert problem.startswith("events.REDEMPTION.mail.tags.CARD: REDEMPTION has no value 'cardNumber' (known: ")


def test_an_unknown_attribute_type_is_refused_by_path() -> None:
    document = sample_config_document()
    document["profileAttributes"]["city"]["type"] = "text"
    [problem] = problems(document)
    assert problem.startswith("profileAttributes.city.type: Input should be ")


def test_every_problem_is_reported_at_once() -> None:
    document = sample_config_document()
    document["locale"] = "xx-QQ"
    document["currency"] = "ABC"
    del document["events"]["REDEMPTION"]["mail"]
    assert len(problems(document)) == 3


@pytest.mark.parametrize("missing", ["appId", "optInMode", "optOutMode"])
def test_an_opt_in_mapping_without_the_tenants_preference_values_is_refused(missing: str) -> None:
    document = sample_config_document()
    del document["events"]["OPT_IN_EMAIL"][missing]
    assert problems(document) == [f"events.OPT_IN_EMAIL.{missing}: Field required"]


def test_the_same_communication_mode_for_in_and_out_is_refused() -> None:
    document = sample_config_document()
    document["events"]["OPT_IN_EMAIL"] |= {"optInMode": 2, "optOutMode": 2}
    assert problems(document) == [
        "events.OPT_IN_EMAIL: optInMode and optOutMode must be different CommunicationMode values"
    ]


def test_tenants_that_create_customers_in_batch_wait_for_the_next_daily_load() -> None:
    document = sample_config_document()
    document["customers"] = {"creation": "batch", "giveUpAfterMinutes": 60}
    assert problems(document) == [
        "customers: creation 'batch': giveUpAfterMinutes must cover the next daily load (at least 1440 minutes)"
    ]
    document["customers"]["giveUpAfterMinutes"] = 1500
    assert parse_config(document).customers.giveUpAfterMinutes == 1500


def test_each_real_time_format_needs_its_identifiers() -> None:
    document = sample_config_document()
    document["realtime"] = {"format": "serverSide"}
    assert problems(document) == ["realtime.tenantId: the serverSide format needs Optimove's tenant id"]
    document["realtime"] = {"format": "reportEvent"}
    del document["events"]["MEMBER_REGISTRATION"]["realtimeEvent"]["eventId"]
    assert problems(document) == [
        "events.MEMBER_REGISTRATION.realtimeEvent.eventId: the reportEvent format needs the numeric event id"
    ]
