"""Every error the API answers, as one JSON shape:

    {"error": {"code": "...", "message": "...", "details": [{"field": "...", "rule": "..."}]},
     "requestId": "..."}

No error ever echoes a submitted value: a rejected value may be a card number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from dig_contracts.pan import key_by_position, path_segment


class ErrorDetail(BaseModel):
    field: str = Field(examples=["data.reward.value.amount"])
    rule: str = Field(examples=["String should match pattern '^-?\\d{1,8}(\\.\\d{1,4})?$'"])


class ErrorInfo(BaseModel):
    code: str = Field(examples=["VALIDATION_FAILED"])
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    error: ErrorInfo
    requestId: str


class ApiError(Exception):
    status = 500
    code = "INTERNAL_ERROR"
    retry_after: int | None = None

    def __init__(
        self, message: str, details: Sequence[ErrorDetail] = (), *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})
        if self.retry_after is not None:  # the class says how long to wait; no raise repeats it
            self.headers.setdefault("Retry-After", str(self.retry_after))

    def info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, details=self.details)


class InvalidJson(ApiError):
    status, code = 400, "INVALID_JSON"


class NotFound(ApiError):
    status, code = 404, "NOT_FOUND"


class Forbidden(ApiError):
    status, code = 403, "FORBIDDEN"


class MethodNotAllowed(ApiError):
    status, code = 405, "METHOD_NOT_ALLOWED"


class PublishInProgress(ApiError):
    status, code, retry_after = 409, "PUBLISH_IN_PROGRESS", 1


class PayloadTooLarge(ApiError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ApiError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"


class ValidationFailed(ApiError):
    status, code = 422, "VALIDATION_FAILED"


class CardNumberRefused(ApiError):
    status, code = 422, "CARD_NUMBER_REFUSED"


class ServiceUnavailable(ApiError):
    status, code, retry_after = 503, "SERVICE_UNAVAILABLE", 5


class GatewayTimeout(ApiError):
    status, code = 504, "CONNECTOR_TIMEOUT"


# Why an event is refused: each counted by reason (dig_contracts.metrics.rejected_metric) for the dashboard.
REJECTION_CODES: tuple[str, ...] = tuple(
    kind.code
    for kind in (
        ValidationFailed,
        CardNumberRefused,
        PayloadTooLarge,
        InvalidJson,
        UnsupportedMediaType,
        PublishInProgress,
        ServiceUnavailable,
    )
)

CARD_NUMBER_RULE = "must not contain a payment card number (DIG never accepts card numbers)"


def _position(node: Any, key: object) -> int | None:
    if isinstance(node, Mapping):
        for position, name in enumerate(node, start=1):
            if name == key:
                return position
    return None


def field_path(location: Iterable[Any], document: Any = None, *, unknown_last: bool = False) -> str:
    """('data', 'reward', 'value', 'amount') -> 'data.reward.value.amount'; list indexes as [i].

    A location holds the client's keys, which may be anything (a card number, a formula): a key is
    shown only when it is a plain name holding no card number, else by its position in its object
    (``data.<key 3>``), found in ``document``. ``unknown_last``: the last part is a key the schema
    does not know, never shown (named by position)."""
    parts = list(location)
    path = ""
    node = document
    for index, part in enumerate(parts):
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            continue
        if part == "[key]":  # pydantic's marker: the error is about the key just named
            continue
        position = _position(node, part)
        last = index == len(parts) - 1 or (index == len(parts) - 2 and parts[-1] == "[key]")
        segment = key_by_position(position) if (unknown_last and last) else path_segment(part, position)
        path = f"{path}.{segment}" if path else segment
        node = node.get(part) if isinstance(node, Mapping) else None
    return path


def validation_details(
    errors: Iterable[Mapping[str, Any]],
    *,
    event_tags: frozenset[str],
    document: Any = None,
    card_paths: Iterable[str] = (),
) -> list[ErrorDetail]:
    """Pydantic errors as field/rule pairs, without the submitted values or unknown keys, followed by
    ``card_paths`` (where the document holds card numbers), named the same way.

    A discriminated union puts the chosen event type into the location (('REDEMPTION', 'data', ...));
    that tag is dropped, and a missing or unknown type is reported on the ``eventType`` field.
    """
    details: list[ErrorDetail] = []
    renamed: dict[str, str] = {}  # an unknown key's path as card_number_paths names it -> by position
    for error in errors:
        location = [part for part in error.get("loc", ()) if part not in ("body",)]
        if location and location[0] in event_tags:
            location = location[1:]
        kind = error.get("type", "")
        if kind == "union_tag_invalid":
            expected = ", ".join(sorted(event_tags))
            details.append(ErrorDetail(field=field_path([*location, "eventType"]), rule=f"must be one of {expected}"))
            continue
        if kind == "union_tag_not_found":
            details.append(ErrorDetail(field=field_path([*location, "eventType"]), rule="is required"))
            continue
        rule = _RULES.get(kind) or str(error.get("msg", kind))
        unknown = kind == "extra_forbidden" or (bool(location) and location[-1] == "[key]")
        field = field_path(location, document, unknown_last=unknown) or "(body)"
        if unknown:
            renamed[field_path(location, document)] = field
        details.append(ErrorDetail(field=field, rule=rule))
    for path in card_paths:
        for plain, positional in renamed.items():
            if path == plain or path.startswith(f"{plain}.") or path.startswith(f"{plain}["):
                path = positional + path[len(plain) :]
                break
        detail = ErrorDetail(field=path or "(body)", rule=CARD_NUMBER_RULE)
        if detail not in details:
            details.append(detail)
    return details


_RULES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field (unknown keys are refused; named by position, never echoed)",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
}
