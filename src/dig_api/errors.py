"""Every error the API answers, as one JSON shape:

    {"error": {"code": "...", "message": "...", "details": [{"field": "...", "rule": "..."}]},
     "requestId": "..."}

No error ever echoes a submitted value: a rejected value may be a card number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from dig_contracts.pan import card_number_paths, mask_card_numbers


class ErrorDetail(BaseModel):
    field: str = Field(examples=["data.reward.value.amount"])
    rule: str = Field(examples=["String should match pattern '^-?\\d{1,15}(\\.\\d{1,4})?$'"])


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


def field_path(location: Iterable[Any]) -> str:
    """('data', 'reward', 'value', 'amount') -> 'data.reward.value.amount'; list indexes as [i].

    A location can hold a submitted key, and a key can be a card number: it is masked."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return mask_card_numbers(path)


def validation_details(errors: Iterable[Mapping[str, Any]], *, event_tags: frozenset[str]) -> list[ErrorDetail]:
    """Pydantic errors as field/rule pairs, without the submitted values.

    A discriminated union puts the chosen event type into the location (('REDEMPTION', 'data', ...));
    that tag is dropped, and a missing or unknown type is reported on the ``eventType`` field.
    """
    details: list[ErrorDetail] = []
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
        details.append(ErrorDetail(field=field_path(location) or "(body)", rule=rule))
    return details


_RULES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field of this event (unknown keys are refused)",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
}


def card_number_details(document: Any, prefix: str = "") -> list[ErrorDetail]:
    return [
        ErrorDetail(field=f"{prefix}{path}" if path else prefix or "(body)", rule=CARD_NUMBER_RULE)
        for path in card_number_paths(document)
    ]
