"""The OpenAPI document is generated from the code, and the committed copy is kept in step."""

from __future__ import annotations

import json
from pathlib import Path

from dig_api import handler  # noqa: F401 - imported at collection: the X-Ray SDK creates its UDP socket object then
from dig_api.openapi import openapi_document
from dig_contracts.events import EventType

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_document_matches_the_code() -> None:
    assert COMMITTED.read_text() == openapi_document(), "the API contract changed: run `make openapi` and commit"


def test_every_route_is_documented_with_bearer_security() -> None:
    document = json.loads(openapi_document())
    assert set(document["paths"]) == {
        "/v1/events",
        "/v1/events/batch",
        "/v1/sync/events",
        "/v1/messages/{messageId}",
        "/v1/events/{eventId}",
        "/v1/files",
        "/v1/files/{fileId}",
    }
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_each_event_type_has_an_example_and_a_schema() -> None:
    document = json.loads(openapi_document())
    body = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == {t.value for t in EventType}
    assert set(body["schema"]["discriminator"]["mapping"]) == {t.value for t in EventType}
    assert body["examples"]["REDEMPTION"]["value"]["data"]["reward"]["value"] == {
        "amount": "1234.50",
        "currency": "CAD",
    }


def test_errors_are_documented_in_their_one_shape() -> None:
    document = json.loads(openapi_document())
    responses = document["paths"]["/v1/events"]["post"]["responses"]
    assert {"202", "200", "400", "401", "403", "413", "415", "422", "503"} <= set(responses)
    schema = responses["422"]["content"]["application/json"]["schema"]
    assert "error" in json.dumps(schema)
    assert "requestId" in json.dumps(schema)
