"""Payment card numbers (PANs) must never enter DIG: not in a response, a record or a log line.

A value "looks like" a card number when it holds a run of 13 to 19 digits, optionally separated by
single spaces or dashes, that passes the Luhn check, and that stands on its own: not glued to a
letter or digit, directly or through a dash, as the digit runs inside UUIDs and hex ids are.
The API refuses such events; connectors check again before anything leaves for a provider.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

# A run of digits in which single spaces or dashes may separate groups, standing on its own.
_DIGIT_RUN = re.compile(r"(?<![A-Za-z0-9])(?<![A-Za-z0-9]-)\d(?:[ -]?\d)*(?![A-Za-z0-9])(?!-[A-Za-z0-9])")
_SEPARATORS = re.compile(r"[ -]")
_LONG_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12}")
MIN_PAN_DIGITS = 13
MAX_PAN_DIGITS = 19


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


def _is_card_number(run: str) -> bool:
    digits = _SEPARATORS.sub("", run)
    return MIN_PAN_DIGITS <= len(digits) <= MAX_PAN_DIGITS and luhn_valid(digits)


def find_card_number(text: str) -> str | None:
    """The first card-number-like run in ``text`` (separators removed), or None."""
    for match in _DIGIT_RUN.finditer(text):
        if _is_card_number(match.group()):
            return _SEPARATORS.sub("", match.group())
    return None


def mask_card_numbers(text: str) -> str:
    """``text`` with every card-number-like run, separators and all, replaced by its mask."""
    return _DIGIT_RUN.sub(
        lambda match: mask(_SEPARATORS.sub("", match.group())) if _is_card_number(match.group()) else match.group(),
        text,
    )


def may_hold_card_number(raw_json: str) -> bool:
    """A fast, conservative screen of a raw JSON text: False only when no value in it can hold a
    card number (no run of 13 or more digits, and no \\u escape that could spell digits). When
    True, walk the parsed document with card_number_paths to decide and to name the fields."""
    return "\\u" in raw_json or _LONG_DIGIT_RUN.search(raw_json) is not None


def looks_like_card_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 4111111111111111.0 is a card number sent as a JSON float
    if isinstance(value, int):
        value = str(value)
    return isinstance(value, str) and find_card_number(value) is not None


def mask(digits: str) -> str:
    """At most the first six and the last four digits, the PCI DSS display rule."""
    if len(digits) < MIN_PAN_DIGITS:
        return "*" * len(digits)
    return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"


def card_number_paths(value: Any, path: str = "") -> Iterator[str]:
    """Dotted paths (``data.profile.note``, ``items[2]``) of every value, or key, that looks like a PAN."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key)
            if find_card_number(name) is not None:
                # The path must not carry the number it reports, whatever separates its digits.
                masked = mask_card_numbers(name)
                yield f"{path}.{masked}" if path else masked
                continue
            yield from card_number_paths(item, f"{path}.{name}" if path else name)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for index, item in enumerate(value):
            yield from card_number_paths(item, f"{path}[{index}]")
    elif looks_like_card_number(value):
        yield path
