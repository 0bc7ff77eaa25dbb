"""Payment card numbers (PANs) must never enter DIG: not in a record, a report, a log line or an answer.

The rule, applied to every string, key and number a client sends:

1. Normalise: NFKC (full-width digits, no-break and other spaces, compatibility forms), then every
   remaining Unicode decimal digit (Arabic-Indic, Devanagari, mathematical, ...) to its ASCII digit.
2. Digit runs: digits in which any two neighbours may be separated by up to three separators, in any
   mix: whitespace of any kind, any dash, dot, slash, backslash, underscore, comma, pipe. Letters and
   other characters end a run but do not hide what they touch ("card4111...x" is a run).
3. Windows of 13 to 19 consecutive digits of a run (separators dropped), starting where a group of
   the run starts (its first digit, or the first after a separator), so that a card number followed
   by a CVV or an expiry, or after a phone number, in the same run, is found; in a group of more than
   19 bare digits, every window (a phone number glued to a card number). Not from the middle of a
   shorter group: a 16-digit id or a nanosecond epoch is one number, and "ORD-<19 digits>-17" is not
   searched for a card number starting inside its id. The price: digits glued before a card number
   that is itself written in separated groups ("0100411111111 11111111") hide where it starts.
4. A window is a card number when it passes the Luhn check AND starts with an issuer prefix whose
   network issues numbers of that length (``_ISSUERS``: Visa, Mastercard, Amex, Discover, Diners,
   JCB, UnionPay, Maestro, Mir, RuPay, Troy, Verve, and smaller schemes). Luhn alone flags one random
   digit string in ten; the issuer table is the usual compromise that keeps order ids, epoch times
   and barcodes mostly out. Left out: UATP (prefix 1, airline cards: every epoch time starts with 1)
   and Indonesia's GPN (prefixes 50, 56, 58, 60-63 at 16-19 digits: a tenth of all digit runs).
JSON numbers are read as their decimal text; a float with an integer value as that integer
(4111111111111111.0, 4.111111111111111e15); a fractional one not at all.

Three shapes are not card numbers, by their own rules, and are let through: a UUID's canonical text
holding a hex letter (its dashes do not join its groups, none of which can hold 13 digits); a run
right after a "+" of at most 15 digits (an E.164 phone number; a 16-19 digit one is still a card);
and a bare run of exactly 13 digits that carries a valid EAN-13 check digit (a product barcode).

False positives, measured on realistic non-card values by ``python -m benchmarks.pan`` (README,
Security): zero on ISO timestamps, amounts, UUIDs' canonical text almost never, short ids; small and
stated for long bare digit runs (EAN-13 barcodes, 19-digit nanosecond epochs), which the rule cannot
tell from a card number without context, and which DIG refuses rather than risk a PAN.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

MIN_PAN_DIGITS = 13
MAX_PAN_DIGITS = 19
MAX_SEPARATORS = 3  # between two digits: "4111 - 1111" is one run, a sentence is not

# Separators after NFKC (which already folds the no-break, ideographic and full-width spaces and dashes).
_SEPARATOR_CLASS = r"\s\-\u2010-\u2015\u2212\u2043\u2e3a\u2e3b\u301c\u30a0\ufe31\ufe32._/\\,|"
_RUN = re.compile(rf"[0-9](?:[{_SEPARATOR_CLASS}]{{0,{MAX_SEPARATORS}}}[0-9])*")
_NOT_DIGIT = re.compile(r"[^0-9]")
_GROUP = re.compile(r"[0-9]+")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
E164_MAX_DIGITS = 15
# For the raw-text screen: any decimal digit, any non-word character or underscore between them.
_SCREEN = re.compile(rf"\d(?:[\W_]{{0,{MAX_SEPARATORS}}}\d){{{MIN_PAN_DIGITS - 1}}}")


def _ranges(*spans: tuple[int, int]) -> tuple[tuple[str, str], ...]:
    return tuple((str(low), str(high)) for low, high in spans)


# (prefix ranges as (low, high) of equal digit counts, the lengths that network issues); Wikipedia's
# "Payment card number" IIN table, as the PCI scanners of Stripe, Braintree and the Luhn libraries use it.
_ISSUERS: tuple[tuple[tuple[tuple[str, str], ...], frozenset[int]], ...] = (
    (_ranges((4, 4)), frozenset({13, 16, 19})),  # Visa (13: legacy, still in PCI scope)
    (_ranges((51, 55), (2221, 2720)), frozenset({16})),  # Mastercard
    (_ranges((34, 34), (37, 37)), frozenset({15})),  # American Express
    (_ranges((6011, 6011), (644, 649), (65, 65), (622126, 622925)), frozenset(range(16, 20))),  # Discover
    (_ranges((300, 305), (309, 309), (36, 36), (38, 39)), frozenset(range(14, 20))),  # Diners Club
    (_ranges((3528, 3589)), frozenset(range(16, 20))),  # JCB
    (_ranges((62, 62)), frozenset(range(16, 20))),  # UnionPay
    (
        _ranges((5018, 5018), (5020, 5020), (5038, 5038), (5893, 5893), (6304, 6304), (67, 67)),
        frozenset(range(13, 20)),
    ),  # Maestro
    (_ranges((2200, 2204)), frozenset(range(16, 20))),  # Mir
    (_ranges((60, 60), (65, 65), (81, 82), (508, 508), (353, 353), (356, 356)), frozenset({16})),  # RuPay
    (_ranges((9792, 9792)), frozenset({16})),  # Troy
    (_ranges((506099, 506198), (650002, 650027), (507865, 507964)), frozenset({16, 18, 19})),  # Verve
    (_ranges((5019, 5019), (2205, 2205), (9860, 9860), (8600, 8600), (357111, 357111)), frozenset({16})),
    (_ranges((636, 636)), frozenset(range(16, 20))),  # InterPayment
    (_ranges((637, 639)), frozenset({16})),  # InstaPayment
)
_ISSUER_FIRST_DIGITS = frozenset(low[0] for ranges, _ in _ISSUERS for low, _ in ranges)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _known_issuer(window: str) -> bool:
    length = len(window)
    for ranges, lengths in _ISSUERS:
        if length in lengths and any(low <= window[: len(low)] <= high for low, high in ranges):
            return True
    return False


def card_in_digits(digits: str, starts: Iterable[int] | None = None) -> str | None:
    """The first 13-19 digit window of ``digits`` (ASCII digits only) that is a card number, among
    those starting at ``starts`` (every position when None)."""
    count = len(digits)
    for start in range(count - MIN_PAN_DIGITS + 1) if starts is None else starts:
        if start > count - MIN_PAN_DIGITS:
            break
        if digits[start] not in _ISSUER_FIRST_DIGITS:
            continue
        for length in range(MIN_PAN_DIGITS, min(MAX_PAN_DIGITS, count - start) + 1):
            window = digits[start : start + length]
            if _known_issuer(window) and luhn_valid(window):
                return window
    return None


def normalise(text: str) -> str:
    """NFKC, then every Unicode decimal digit as its ASCII digit."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(c)) if not c.isascii() and c.isdecimal() else c for c in text)


def _ean13(digits: str) -> bool:
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits[:12]))
    return (10 - weighted % 10) % 10 == int(digits[12])


def _prepared(text: str) -> str:
    """Normalised, with the dashes of UUIDs that hold a hex letter made into non-separators."""
    text = normalise(text)
    if "-" in text:
        text = _UUID.sub(
            lambda m: m.group().replace("-", ":") if not m.group().replace("-", "").isdigit() else m.group(), text
        )
    return text


def _card_in_run(text: str, match: re.Match[str]) -> str | None:
    digits = _NOT_DIGIT.sub("", match.group())
    if len(digits) < MIN_PAN_DIGITS:
        return None
    if len(digits) <= E164_MAX_DIGITS and match.start() > 0 and text[match.start() - 1] == "+":
        return None
    if len(digits) == MIN_PAN_DIGITS and digits == match.group() and _ean13(digits):
        return None
    return card_in_digits(digits, _window_starts(match.group()))


def _window_starts(run: str) -> list[int]:
    """Where windows of a run may start (indexes into its digits): each group's first digit, and
    every digit of a group longer than MAX_PAN_DIGITS."""
    starts: list[int] = []
    index = 0
    for group in _GROUP.findall(run):
        starts.extend(range(index, index + len(group)) if len(group) > MAX_PAN_DIGITS else (index,))
        index += len(group)
    return starts


def find_card_number(text: str) -> str | None:
    """The first card number in ``text`` (its digits only), or None."""
    prepared = _prepared(text)
    for match in _RUN.finditer(prepared):
        found = _card_in_run(prepared, match)
        if found is not None:
            return found
    return None


def mask_card_numbers(text: str) -> str:
    """``text`` (normalised) with every digit run that holds a card number replaced by that number's mask."""
    prepared = _prepared(text)

    def masked(match: re.Match[str]) -> str:
        found = _card_in_run(prepared, match)
        return mask(found) if found is not None else match.group()

    return _RUN.sub(masked, prepared)


def may_hold_card_number(raw_json: str) -> bool:
    """A fast, conservative screen of a raw JSON text: False only when no value in it can hold a card
    number. True when it has 13 digits close together, any backslash (a JSON escape can spell a digit
    or a tab) or any non-ASCII character (a compatibility digit); then walk the parsed document with
    card_number_paths to decide and to name the fields."""
    return "\\" in raw_json or not raw_json.isascii() or _SCREEN.search(raw_json) is not None


def _number_texts(value: int | float) -> tuple[str, ...]:
    """A JSON number as the rule reads it: an integral one as its integer, however it was written
    (4111111111111111.0, 4.111111111111111e15); a fractional one not at all (its digits measure
    something: a float's mantissa would match one time in twenty)."""
    if isinstance(value, float):
        return (str(int(value)),) if value.is_integer() else ()
    return (str(value),)


def _json_number(text: str) -> str | int:
    """json.loads's parse_float for the rule: an integral number as its exact integer, else nothing."""
    from decimal import Decimal, InvalidOperation

    try:
        number = Decimal(text)
    except InvalidOperation:
        return ""
    if number.is_finite() and number == number.to_integral_value() and abs(number) < 10**30:
        return int(number)
    return ""


def looks_like_card_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return any(find_card_number(text) is not None for text in _number_texts(value))
    return isinstance(value, str) and find_card_number(value) is not None


def mask(digits: str) -> str:
    """At most the first six and the last four digits, the PCI DSS display rule."""
    if len(digits) < MIN_PAN_DIGITS:
        return "*" * len(digits)
    return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"


# A key that may be echoed in an error's field path: a name of the kind the schemas use.
_ECHOABLE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def key_by_position(position: int | None) -> str:
    """How an error or report names a key it must not echo: its 1-based position in its object."""
    return f"<key {position}>" if position is not None else "<key>"


def path_segment(key: object, position: int | None) -> str:
    """A key as a field path shows it: verbatim when it is a plain name holding no card number,
    else by its position (a client's key can be anything, a card number or a formula included)."""
    name = str(key)
    if _ECHOABLE_KEY.match(name) and find_card_number(name) is None:
        return name
    return key_by_position(position)


def card_number_paths(value: Any, path: str = "") -> Iterator[str]:
    """Dotted paths (``data.profile.note``, ``items[2]``) of every value, or key, that holds a card
    number. A key that holds one is named by its position (``data.<key 3>``), never by its text."""
    if isinstance(value, Mapping):
        for position, (key, item) in enumerate(value.items(), start=1):
            name = path_segment(key, position)
            if find_card_number(str(key)) is not None:
                yield f"{path}.{name}" if path else name
                continue
            yield from card_number_paths(item, f"{path}.{name}" if path else name)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for index, item in enumerate(value):
            yield from card_number_paths(item, f"{path}[{index}]")
    elif looks_like_card_number(value):
        yield path


def card_number_paths_in_json(raw: str | bytes) -> list[str]:
    """card_number_paths of a JSON text, its integral numbers read exactly (a float would round
    4111111111111111111.0). Raises ValueError when it is not JSON."""
    return list(card_number_paths(json.loads(raw, parse_float=_json_number, parse_int=str)))


def mask_card_numbers_in(document: Any) -> Any:
    """A JSON document with every string, number or key that holds a card number masked (what a
    provider sends back is kept; a card number in it must not be)."""
    if isinstance(document, Mapping):
        return {
            (mask_card_numbers(str(key)) if find_card_number(str(key)) else key): mask_card_numbers_in(value)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [mask_card_numbers_in(item) for item in document]
    if isinstance(document, str) and find_card_number(document) is not None:
        return mask_card_numbers(document)
    if isinstance(document, int | float) and looks_like_card_number(document):
        return mask(_NOT_DIGIT.sub("", _number_texts(document)[0]))
    return document


def echoable(identifier: object, max_chars: int = 200) -> str | None:
    """An id a client sent, when it may be written into an answer or report: text, not too long,
    holding no card number; else None."""
    if not isinstance(identifier, str) or len(identifier) > max_chars or find_card_number(identifier) is not None:
        return None
    return identifier
