"""The OpenAPI document is generated from the code, and the committed copy is kept in step."""

from __future__ import annotations

import json
from pathlib import Path

from dig_api import handler  # imported at collection: the X-Ray SDK creates its UDP socket object then
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
        "/v1/inbound-events",
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
    assert responses["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(document["components"]["schemas"]["ErrorBody"]["properties"]) == {"error", "requestId"}


def test_the_document_validates_as_openapi_3_1_and_every_reference_resolves() -> None:
    from openapi_spec_validator import validate

    document = json.loads(openapi_document())
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    text = json.dumps(document)
    assert "#/$defs/" not in text
    schemas = document["components"]["schemas"]
    for ref in set(__import__("re").findall(r'"\$ref": "#/components/schemas/([^"]+)"', text)):
        assert ref in schemas, ref


def test_every_route_lists_every_status_it_answers_with_the_error_shape_and_retry_after() -> None:
    document = json.loads(openapi_document())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "403", "405", "429", "500"} <= set(responses), (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    content = response["content"]["application/json"]
                    assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
                    assert content["example"]["error"]["code"]
                    assert ("Retry-After" in response.get("headers", {})) == (status in {"409", "429", "503"})
    post = document["paths"]["/v1/events"]["post"]["responses"]
    assert {"400", "409", "413", "415", "422", "503"} <= set(post)


def test_the_schema_says_what_the_validator_enforces() -> None:
    schemas = json.loads(openapi_document())["components"]["schemas"]
    profile = schemas["MemberProfileUpdateData"]["properties"]["profile"]
    assert profile["additionalProperties"] is False  # only keys of the pattern
    assert profile["maxProperties"] == 200
    assert schemas["BatchRequest"]["properties"]["events"]["maxItems"] == 500
    assert "CAD" in schemas["Money"]["properties"]["currency"]["enum"]
    assert schemas["RedemptionData"]["properties"]["pointsRedeemed"]["exclusiveMinimum"] == 0
    events_file, extract_file = schemas["FileDeclaration"]["oneOf"]
    assert events_file["properties"]["name"] == {"type": "null"}
    assert extract_file["required"][-1] == "name"


def test_allow_headers_list_the_documented_methods_only() -> None:
    from tests.apigw import FakeLambdaContext, rest_event

    document = json.loads(openapi_document())
    for path, methods in (("/v1/events/batch", "POST"), ("/v1/files", "GET, POST"), ("/v1/events/evt-1", "GET")):
        answer = handler.lambda_handler(rest_event("OPTIONS", path), FakeLambdaContext())
        assert answer["statusCode"] == 405
        headers = {**answer.get("headers", {}), **{k: v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}}
        assert headers["Allow"] == methods
        template = path if path in document["paths"] else "/v1/events/{eventId}"
        assert sorted(m.upper() for m in document["paths"][template]) == methods.split(", ")
