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
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


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
