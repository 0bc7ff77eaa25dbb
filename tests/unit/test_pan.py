"""The card-number rule: no false negative on Luhn-valid numbers in any separator style, no false
positive on the ids, timestamps and amounts events are made of."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dig_contracts.pan import card_number_paths, find_card_number, looks_like_card_number, luhn_valid, mask


def with_check_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("unreachable: one check digit always fits")


luhn_numbers = st.integers(min_value=12, max_value=18).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n).map(with_check_digit)
)


@st.composite
def separated(draw: st.DrawFn) -> tuple[str, str]:
    """A Luhn-valid number written with spaces and/or dashes between arbitrary groups."""
    number = draw(luhn_numbers)
    out = number[0]
    for digit in number[1:]:
        out += draw(st.sampled_from(["", "", " ", "-"])) + digit
    return number, out


@given(separated(), st.sampled_from(["", "card ", "paid with "]), st.sampled_from(["", " thanks", ".", "/x"]))
def test_every_luhn_valid_number_is_found_in_any_separator_style(
    case: tuple[str, str], before: str, after: str
) -> None:
    digits, written = case
    assert find_card_number(before + written + after) == digits
    assert looks_like_card_number(written)


@given(luhn_numbers.filter(lambda number: not number.startswith("0")))
def test_a_card_number_sent_as_a_json_number_is_found(number: str) -> None:
    assert looks_like_card_number(int(number))


@given(st.uuids())
def test_uuids_are_not_card_numbers(value: uuid.UUID) -> None:
    assert not looks_like_card_number(str(value))


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_timestamps_are_not_card_numbers(moment: datetime) -> None:
    assert not looks_like_card_number(moment.isoformat())
    assert not looks_like_card_number(moment.strftime("%Y-%m-%d %H:%M:%S"))
    assert not looks_like_card_number(int(moment.timestamp()))  # epoch seconds


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False, allow_infinity=False))
def test_amounts_are_not_card_numbers(amount: object) -> None:
    assert not looks_like_card_number(str(amount))


@given(st.from_regex(r"[A-Z]{1,4}-[0-9]{1,10}", fullmatch=True), st.integers(min_value=0, max_value=10**12 - 1))
def test_ordinary_ids_and_counts_are_not_card_numbers(identifier: str, count: int) -> None:
    assert not looks_like_card_number(identifier)
    assert not looks_like_card_number(count)


def test_booleans_and_short_digit_runs_are_not_card_numbers() -> None:
    assert not looks_like_card_number(True)
    assert not looks_like_card_number("4242")
    assert not looks_like_card_number("Order 123456789012")  # 12 digits


def test_mask_shows_at_most_the_first_six_and_last_four_digits() -> None:
    assert mask("4111111111111111") == "411111******1111"
    assert mask("4111111111111") == "411111***1111"


def test_paths_name_each_offending_field_without_its_value() -> None:
    document = {
        "data": {
            "profile": {"note": "pay 4111 1111 1111 1111", "city": "Ottawa"},
            "items": ["x", "5500-0000-0000-0004"],
        },
        "4111111111111111": "a card number as a key",
    }
    paths = sorted(card_number_paths(document))
    assert paths == ["411111******1111", "data.items[1]", "data.profile.note"]


@given(separated(), st.sampled_from(["", "card ", "paid with "]))
def test_a_card_number_in_a_key_is_masked_in_the_path_whatever_its_separators(
    case: tuple[str, str], before: str
) -> None:
    number, written = case
    [path] = card_number_paths({"data": {"profile": {f"{before}{written}": "value"}}})
    assert path.startswith(f"data.profile.{before}")
    assert find_card_number(path) is None
    assert number not in path.replace(" ", "").replace("-", "")


@given(luhn_numbers.filter(lambda number: not number.startswith("0") and len(number) <= 15))
def test_a_card_number_sent_as_a_json_float_is_found(number: str) -> None:
    assert list(card_number_paths({"data": {"profile": {"note": float(number)}}})) == ["data.profile.note"]


def test_a_timestamp_one_day_apart_is_still_not_a_card_number() -> None:
    moment = datetime(2026, 11, 21, tzinfo=UTC)
    assert not looks_like_card_number((moment + timedelta(days=1)).isoformat())
