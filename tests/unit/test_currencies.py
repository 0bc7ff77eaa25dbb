"""The API's currency list (a constant, to keep Babel off its cold-start path) matches Babel's."""

from __future__ import annotations

import datetime

from babel.core import get_global
from babel.numbers import get_territory_currencies, is_currency

from dig_contracts.currencies import ISO_4217_CURRENCIES


def test_every_listed_code_is_a_currency_babel_knows() -> None:
    assert all(is_currency(code) for code in ISO_4217_CURRENCIES)


def test_every_currency_in_use_today_is_listed() -> None:
    territories = {t for ts in get_global("all_currencies").values() for t in ts}
    today = datetime.date(2026, 11, 21)
    in_use = {c for t in territories for c in get_territory_currencies(t, today, tender=True)}
    assert in_use <= ISO_4217_CURRENCIES
    assert {"USD", "CAD", "EUR"} <= ISO_4217_CURRENCIES
    assert "FRF" not in ISO_4217_CURRENCIES  # historic
