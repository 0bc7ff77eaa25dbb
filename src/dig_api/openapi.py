"""The OpenAPI document, generated from the routes and models (``make openapi`` writes it to
docs/openapi.json, which is committed so that every contract change shows in review)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from dig_contracts.examples import all_examples

TITLE = "DIG: Data Integration Gateway API"
VERSION = "1.0.0"
DESCRIPTION = (
    "The REST interface ES Loyalty posts member events to. Every route needs a bearer token "
    "(Authorization: Bearer <JWT>) with scope events:write (POST) or events:read (GET). Every error "
    "answers {error: {code, message, details: [{field, rule}]}, requestId}."
)


@cache
def openapi_document() -> str:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

    from dig_api.handler import app

    schema = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description=DESCRIPTION,
            servers=[Server(url="/")],
            security_schemes={"bearer": HTTPBearer(bearerFormat="JWT")},
            security=[{"bearer": []}],
        )
    )
    _add_examples(schema)
    _complete_errors(schema)
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


# Every route can answer these (API Gateway's authorizer, usage plan and WAF, the router, the handler).
SHARED_ERRORS = (401, 403, 405, 429, 500)
ERROR_EXAMPLES: dict[int, tuple[str, str, list[dict[str, str]]]] = {
    400: ("INVALID_JSON", "the body is not valid JSON", []),
    401: ("UNAUTHORIZED", "missing or invalid bearer token", []),
    403: ("FORBIDDEN", "the token does not allow this route", []),
    404: ("NOT_FOUND", "no such message", []),
    405: ("METHOD_NOT_ALLOWED", "this method is not allowed on this route", []),
    409: ("PUBLISH_IN_PROGRESS", "another request is delivering this eventId right now; retry shortly", []),
    413: (
        "PAYLOAD_TOO_LARGE",
        "the event takes 512000 bytes as recorded in the audit trail",
        [{"field": "(event)", "rule": "at most 401408 bytes as stored"}],
    ),
    415: ("UNSUPPORTED_MEDIA_TYPE", "send the body as application/json", []),
    422: (
        "VALIDATION_FAILED",
        "the event does not match its schema",
        [{"field": "data.reward.value.amount", "rule": "String should match pattern '^-?\\d{1,8}(\\.\\d{1,4})?$'"}],
    ),
    429: ("THROTTLED", "too many requests; retry later", []),
    500: ("INTERNAL_ERROR", "an unexpected error occurred; the request id identifies it in the logs", []),
    503: ("SERVICE_UNAVAILABLE", "the audit trail cannot be read right now; nothing was accepted, retry later", []),
}
RETRY_AFTER = {409, 429, 503}
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def _complete_errors(schema: dict[str, Any]) -> None:
    """Each operation lists every status it can answer, each with the one error shape, an example,
    and Retry-After where it is sent; Powertools' own validation-error schemas (never answered:
    dig_api.handler maps them to the error shape) are dropped."""
    from dig_api.handler import ERROR_DESCRIPTIONS

    for operations in schema["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            for status in sorted({*SHARED_ERRORS, *(int(s) for s in responses if int(s) >= 400)}):
                code, message, details = ERROR_EXAMPLES[status]
                response: dict[str, Any] = {
                    "description": ERROR_DESCRIPTIONS[status],
                    "content": {
                        "application/json": {
                            "schema": ERROR_REF,
                            "example": {
                                "error": {"code": code, "message": message, "details": details},
                                "requestId": "c7eaec91-f957-4a0c-ae5f-fcc2458fc86c",
                            },
                        }
                    },
                }
                if status in RETRY_AFTER:
                    response["headers"] = {
                        "Retry-After": {
                            "description": "Seconds to wait before sending the same request again",
                            "schema": {"type": "integer", "minimum": 0},
                        }
                    }
                if status == 405:
                    response["headers"] = {
                        "Allow": {"description": "The methods this path takes", "schema": {"type": "string"}}
                    }
                responses[str(status)] = response
    components = schema["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        components.pop(unused, None)
    text = json.dumps(schema)
    assert "#/$defs/" not in text, "a reference the document cannot resolve"


def _add_examples(schema: dict[str, Any]) -> None:
    """An example per event type on the routes that take one event, and a batch example."""
    examples = {
        event_type.value: {"summary": event_type.value, "value": example}
        for event_type, example in all_examples().items()
    }
    for path in ("/v1/events", "/v1/sync/events"):
        schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["examples"] = examples
    batch = schema["paths"]["/v1/events/batch"]["post"]["requestBody"]["content"]["application/json"]
    batch["examples"] = {
        "batch": {"summary": "one event of each type", "value": {"events": list(all_examples().values())}}
    }


if __name__ == "__main__":
    print(openapi_document(), end="")
