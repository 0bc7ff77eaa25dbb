"""The card-number rule (dig_contracts.pan): card numbers in every disguise are found, wherever they
stand in a text; the ids, timestamps, amounts and phone numbers events are made of are not."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from hypothesis import assume, given
from hypothesis import strategies as st

from dig_contracts.pan import (
    card_number_paths,
    card_number_paths_in_json,
    echoable,
    find_card_number,
    looks_like_card_number,
    luhn_valid,
    mask,
    mask_card_numbers,
    may_hold_card_number,
)

# Networks' published test numbers (Stripe's, Adyen's and Braintree's lists).
KNOWN_TEST_NUMBERS = (
    "4111111111111111",  # Visa
    "4242424242424242",
    "4222222222222",  # Visa, 13 digits
    "5555555555554444",  # Mastercard
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # American Express
    "371449635398431",
    "6011111111111117",  # Discover
    "6011000990139424",
    "30569309025904",  # Diners Club, 14 digits
    "38520000023237",
    "3530111333300000",  # JCB
    "3566002020360505",
    "6200000000000005",  # UnionPay
    "6759649826438453",  # Maestro
    "6799990100000000019",  # Maestro, 19 digits
)
# (first digits, length) of issuers the rule knows, to generate numbers from.
ISSUERS = (("4", 16), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16))
ISSUERS += (("65", 19), ("36", 14), ("3528", 16), ("62", 18), ("6304", 13), ("2200", 17))


def with_check_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("unreachable: one check digit always fits")


def is_ean13(digits: str) -> bool:
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits[:12]))
    return len(digits) == 13 and (10 - weighted % 10) % 10 == int(digits[12])


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.sampled_from(KNOWN_TEST_NUMBERS))
    prefix, length = draw(st.sampled_from(ISSUERS))
    body = draw(st.text(alphabet="0123456789", min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1))
    return with_check_digit(prefix + body)


SEPARATORS = ["", "", " ", "-", ".", "/", "_", "  ", "\t", "\u00a0", "\u2013", " - ", ",", "|", "\u3000"]
# ASCII, full-width, Arabic-Indic, Devanagari, mathematical bold, Bengali: each a run of 0-9.
DIGIT_ZEROS = (0x30, 0xFF10, 0x0660, 0x0966, 0x1D7CE, 0x09E6)


@st.composite
def disguised(draw: st.DrawFn) -> tuple[str, str]:
    """A card number written with any mix of separators between any digits, in any script's digits."""
    number = draw(card_numbers())
    zero = draw(st.sampled_from(DIGIT_ZEROS))
    spelt = [chr(zero + int(d)) for d in number]
    out = spelt[0]
    for digit in spelt[1:]:
        out += draw(st.sampled_from(SEPARATORS)) + digit
    return number, out


CONTEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="+"), max_size=30).filter(
    lambda t: find_card_number(t) is None
)
AROUND = st.sampled_from(["", "card", "CC#", "x", "tel 613 555 0100 ", "6135550100", "paid with "])
AFTER = st.sampled_from(["", "123", " 123", "/12/28", " exp 12/28 cvv 123", "1228123", "y", "."])


def findable(number: str) -> bool:
    """The rule's stated exception: a bare 13-digit run with a valid EAN-13 check digit is a barcode."""
    return not is_ean13(number)


@given(disguised(), AROUND, AFTER, CONTEXT, CONTEXT)
def test_a_card_number_is_found_in_any_disguise_anywhere_in_a_text(
    case: tuple[str, str], before: str, after: str, left: str, right: str
) -> None:
    number, written = case
    # The rule's stated limit: digits glued before a card number that is itself written in separated
    # groups hide where it starts (a phone number glued to a bare card number, or apart from one, does not).
    assume(not (before[-1:].isdigit() and not written.isdecimal()))
    text = f"{left} {before}{written}{after} {right}"
    if findable(number) or before or after:
        assert find_card_number(text) is not None
        assert looks_like_card_number(text)
        assert may_hold_card_number(text)
        assert find_card_number(mask_card_numbers(text)) is None
        assert number not in mask_card_numbers(text)


@given(card_numbers())
def test_a_card_number_sent_as_a_json_number_or_float_is_found(number: str) -> None:
    if number.startswith("0") or not findable(number):
        return
    assert looks_like_card_number(int(number))
    if len(number) <= 15:  # exactly representable as a float
        assert looks_like_card_number(float(number))
        assert list(card_number_paths({"data": {"profile": {"note": float(number)}}})) == ["data.profile.note"]
    written = f'{{"data": {{"a": {number}, "b": {number[0]}.{number[1:]}e{len(number) - 1}, "c": {number}.0}}}}'
    assert card_number_paths_in_json(written) == ["data.a", "data.b", "data.c"]


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()))
def test_a_fractional_json_number_is_a_measure_not_a_card_number(value: float) -> None:
    assert not looks_like_card_number(value)
    assert card_number_paths_in_json(json.dumps({"v": value})) == []


@given(disguised(), st.integers(min_value=1, max_value=5))
def test_a_card_number_in_a_key_is_named_by_position_never_by_its_text(case: tuple[str, str], others: int) -> None:
    _number, written = case
    profile = {f"field{i}": "x" for i in range(others)} | {f"k{written}": "value"}
    [path] = card_number_paths({"data": {"profile": profile}})
    assert path == f"data.profile.<key {others + 1}>"


def test_the_known_test_numbers_of_every_network_are_found_bare_and_masked() -> None:
    for number in KNOWN_TEST_NUMBERS:
        assert find_card_number(number) == number
        assert mask_card_numbers(f"pay {number} now") == f"pay {mask(number)} now"


# --- what is not a card number ------------------------------------------------------------------


@given(st.uuids())
def test_uuids_are_not_card_numbers(value: uuid.UUID) -> None:
    assert not looks_like_card_number(str(value))


# Epoch milliseconds reach 13 digits starting with 4 (a Visa length) in 2096.
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2095, 1, 1), timezones=st.just(UTC)))
def test_timestamps_are_not_card_numbers(moment: datetime) -> None:
    assert not looks_like_card_number(moment.isoformat())
    assert not looks_like_card_number(moment.strftime("%Y-%m-%d %H:%M:%S.%f"))
    assert not looks_like_card_number(int(moment.timestamp()))  # epoch seconds
    assert not looks_like_card_number(int(moment.timestamp() * 1000))  # epoch milliseconds


@given(st.decimals(min_value=-(10**10), max_value=10**10, places=2, allow_nan=False, allow_infinity=False))
def test_amounts_are_not_card_numbers(amount: object) -> None:
    assert not looks_like_card_number(str(amount))


@given(st.from_regex(r"\+[1-9][0-9]{0,2} [0-9]{3} [0-9]{3,4} ?[0-9]{0,5}", fullmatch=True))
def test_international_phone_numbers_are_not_card_numbers(phone: str) -> None:
    assert not looks_like_card_number(phone)


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_ean13_barcodes_are_not_card_numbers(body: str) -> None:
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    assert not looks_like_card_number(body + str(check))


@given(st.from_regex(r"[A-Z]{1,4}-[0-9]{1,10}", fullmatch=True), st.integers(min_value=0, max_value=10**12 - 1))
def test_ordinary_ids_and_counts_are_not_card_numbers(identifier: str, count: int) -> None:
    assert not looks_like_card_number(identifier)
    assert not looks_like_card_number(count)


def test_booleans_and_short_digit_runs_are_not_card_numbers() -> None:
    assert not looks_like_card_number(True)
    assert not looks_like_card_number("4242")
    assert not looks_like_card_number("Order 123456789012")  # 12 digits
    assert not looks_like_card_number(float("nan"))


def test_the_exceptions_are_narrow() -> None:
    assert find_card_number("+4111111111111111") == "4111111111111111"  # 16 digits after + is no phone
    assert find_card_number("41111111-1111-1111-1111-111111111111") is not None  # all digits: no UUID
    assert find_card_number("4222222222222") == "4222222222222"  # 13 digits, not a valid EAN-13


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
        "=HYPERLINK(1)": {"note": "4111111111111111"},
    }
    assert sorted(card_number_paths(document)) == ["<key 2>", "<key 3>.note", "data.items[1]", "data.profile.note"]


def test_echoable_ids_are_short_text_without_a_card_number() -> None:
    assert echoable("evt-0001") == "evt-0001"
    assert echoable("evt-4111111111111111") is None
    assert echoable("x" * 201) is None
    assert echoable(12) is None


@given(st.integers(min_value=10**18, max_value=2 * 10**18 - 1))  # 2001 to 2033
def test_a_bare_19_digit_number_from_the_1s_such_as_a_nanosecond_epoch_is_not_searched_in_its_middle(
    nanos: int,
) -> None:
    assert not looks_like_card_number(nanos)
    assert not looks_like_card_number(f"cost-{nanos}-17")


def test_windows_start_where_a_group_starts_or_anywhere_in_a_long_bare_group() -> None:
    assert find_card_number("4111111111111111123") == "4111111111111111"  # a CVV glued on
    assert find_card_number("9994111111111111111") is None  # 19 bare digits: one number
    assert find_card_number("99941111111111111111") == "4111111111111111"  # 20 bare: every window
    assert find_card_number("999 4111111111111111") == "4111111111111111"  # a group of its own
    assert find_card_number("cost-1064873463837725312-17") is None  # an id's digits, joined by dashes
