"""Values formatted for the member's locale: providers do not localize what they send (Optimove's
transactional mail, Marketo's My Tokens), so money, numbers and dates leave DIG already written the
way the member reads them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal


@lru_cache(maxsize=256)
def babel_locale(tag: str) -> Locale | None:
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return None


def resolve_locale(event_locale: str | None, default: str) -> tuple[Locale, str | None]:
    """The locale to format with, and a note when the event's own locale had to be replaced."""
    if event_locale:
        found = babel_locale(event_locale)
        if found is not None:
            return found, None
        fallback = babel_locale(default)
        assert fallback is not None  # the configuration's locale is validated
        return fallback, f"locale {event_locale} is unknown; formatted for {default}"
    fallback = babel_locale(default)
    assert fallback is not None
    return fallback, None


def money(amount: Decimal, currency: str, locale: Locale) -> str:
    """fr-CA: 1 234,50 $ ; en-US: CA$1,234.50 ; de-DE: 1.234,50 CA$."""
    return format_currency(amount, currency, locale=locale)


def number(value: int | float | Decimal, locale: Locale) -> str:
    return format_decimal(value, locale=locale)


def day(value: date | datetime, locale: Locale, style: str) -> str:
    """A date in the member's locale. A timestamp keeps its own offset: it is the member's day."""
    return format_date(value.date() if isinstance(value, datetime) else value, format=style, locale=locale)


def text(value: Any, locale: Locale, date_style: str) -> str:
    """Any event value as the member reads it (a mail tag, a My Token): money, numbers and dates
    written for the locale, booleans as true/false, nothing as empty."""
    from dig_contracts.events import Money

    if value is None:
        return ""
    if isinstance(value, Money):
        return money(value.decimal, value.currency, locale)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return number(value, locale)
    if isinstance(value, datetime | date):
        return day(value, locale, date_style)
    return str(value)
