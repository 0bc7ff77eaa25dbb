"""ES Loyalty's data extracts: one schema per extract name, each with a key column, typed columns
and a ``LastUpdated`` column. A file of ``kind: extract`` names one; each row is validated here and
written on as JSON with typed values (integers as numbers, decimals as strings, dates as ISO text,
blanks as null), which is what a connector reading a ``FILE_READY`` extract receives.

Column names follow ES Loyalty's extracts (camelCase, ``LastUpdated`` as Optimove's batch guide
names it). A tenant's extra columns are refused rather than passed on silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from dig_contracts.pan import key_by_position, looks_like_card_number

LAST_UPDATED = "LastUpdated"
MAX_TEXT_CHARS = 4000


class ColumnType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"  # dot decimal, kept as a string so that no precision is lost
    DATE = "date"  # YYYY-MM-DD
    DATETIME = "datetime"  # ISO 8601 with an offset or Z
    BOOLEAN = "boolean"  # true/false (JSON) or true/false/1/0 (CSV)
    CURRENCY = "currency"  # ISO 4217 code


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = ColumnType.STRING
    required: bool = False


@dataclass(frozen=True)
class ExtractSchema:
    name: str
    key: str
    columns: tuple[Column, ...]
    description: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class RowProblem:
    """A row refused: the column and the rule, never the value (it may be personal data)."""

    field: str
    rule: str


class RowRefused(ValueError):
    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.rule}" for p in problems))
        self.problems = problems


def _schema(name: str, key: str, description: str, *columns: Column) -> ExtractSchema:
    return ExtractSchema(
        name=name,
        key=key,
        description=description,
        columns=(Column(key, required=True), *columns, Column(LAST_UPDATED, ColumnType.DATETIME, required=True)),
    )


C, T = Column, ColumnType
EXTRACTS: dict[str, ExtractSchema] = {
    s.name: s
    for s in (
        _schema(
            "memberAccounts",
            "memberId",
            "One row per member account: profile, tier, balances, opt-in",
            C("programId"),
            C("email"),
            C("firstName"),
            C("lastName"),
            C("locale"),
            C("country"),
            C("tier"),
            C("pointsBalance", T.INTEGER),
            C("lifetimePoints", T.INTEGER),
            C("enrolledAt", T.DATE),
            C("birthDate", T.DATE),
            C("emailOptIn", T.BOOLEAN),
        ),
        _schema(
            "partnerLinks",
            "linkId",
            "One row per link between a member and a partner program",
            C("memberId", required=True),
            C("partnerCode", required=True),
            C("status"),
            C("linkedAt", T.DATETIME),
        ),
        _schema(
            "personalizedOffers",
            "assignmentId",
            "One row per offer assigned to a member",
            C("memberId", required=True),
            C("offerCode", required=True),
            C("validFrom", T.DATE),
            C("validTo", T.DATE),
            C("value", T.DECIMAL),
            C("currency", T.CURRENCY),
        ),
        _schema(
            "extendedMemberData",
            "recordId",
            "Extended Member Data: one row per member and attribute",
            C("memberId", required=True),
            C("attribute", required=True),
            C("value"),
        ),
        _schema(
            "orders",
            "orderId",
            "One row per order",
            C("memberId", required=True),
            C("orderedAt", T.DATETIME, required=True),
            C("amount", T.DECIMAL),
            C("currency", T.CURRENCY),
            C("status"),
        ),
    )
}

_DECIMAL = re.compile(r"^-?\d{1,18}(\.\d{1,6})?$")
_INTEGER = re.compile(r"^-?\d{1,18}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})


def _typed(column: Column, value: Any) -> Any:
    """The value as the schema types it; ValueError naming the rule when it is not one."""
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            value = None
    if value is None:
        if column.required:
            raise ValueError("is required")
        return None
    kind = column.type
    if kind is ColumnType.STRING:
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ValueError("must be text")
        text = str(value)
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"at most {MAX_TEXT_CHARS} characters")
        return text
    if kind is ColumnType.INTEGER:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and _INTEGER.match(value))
        ):
            raise ValueError("must be a whole number")
        return int(value)
    if kind is ColumnType.DECIMAL:
        text = str(value) if isinstance(value, int | float | str) and not isinstance(value, bool) else ""
        if not _DECIMAL.match(text):
            raise ValueError("must be a dot decimal with at most 6 decimal places")
        try:
            return str(Decimal(text))
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
            raise ValueError("must be a dot decimal") from None
    if kind is ColumnType.DATE:
        text = str(value)
        try:
            valid = len(text) == 10 and date.fromisoformat(text).isoformat() == text
        except ValueError:
            valid = False
        if not valid:
            raise ValueError("must be a date, YYYY-MM-DD")
        return text
    if kind is ColumnType.DATETIME:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError("must be an ISO 8601 date and time with an offset") from None
        if moment.tzinfo is None:
            raise ValueError("must carry an offset (Z or +hh:mm)")
        return moment.isoformat()
    if kind is ColumnType.BOOLEAN:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError("must be true or false")
    if kind is ColumnType.CURRENCY:
        if not isinstance(value, str) or not _CURRENCY.match(value):
            raise ValueError("must be an ISO 4217 currency code")
        return value
    raise AssertionError(kind)  # pragma: no cover


def validate_row(schema: ExtractSchema, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row typed as the schema says; RowRefused listing every column that breaks a rule."""
    problems: list[RowProblem] = []
    typed: dict[str, Any] = {}
    for position, name in enumerate(row, start=1):
        if schema.column(name) is None:  # named by position: a client's key is never echoed
            problems.append(RowProblem(key_by_position(position), f"is not a column of extract {schema.name}"))
    for column in schema.columns:
        value = row.get(column.name)
        if looks_like_card_number(value):
            problems.append(RowProblem(column.name, "must not contain a payment card number"))
            continue
        try:
            typed[column.name] = _typed(column, value)
        except ValueError as error:
            problems.append(RowProblem(column.name, str(error)))
    if problems:
        raise RowRefused(problems)
    return typed
