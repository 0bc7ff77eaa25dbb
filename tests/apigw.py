"""API Gateway REST proxy events, as the gateway hands them to the DIG API Lambda."""

from __future__ import annotations

import json
import uuid
from typing import Any


class FakeLambdaContext:
    function_name = "dig-api"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:dig-api"
    aws_request_id = "lambda-request-id"
    log_group_name = "/aws/lambda/dig-api"
    log_stream_name = "test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 28_000


def rest_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str | None = "application/json",
    client_id: str = "es-loyalty",
    raw: bool = False,
) -> dict[str, Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    text = body if raw or body is None else json.dumps(body)
    return {
        "resource": "/v1/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.removeprefix("/v1/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "stage": "dev",
            "requestId": str(uuid.uuid4()),
            "resourcePath": "/v1/{proxy+}",
            "httpMethod": method,
            "identity": {"sourceIp": "203.0.113.9", "userAgent": "es-loyalty/1.0"},
            "authorizer": {"principalId": client_id, "clientId": client_id},
        },
        "body": text,
        "isBase64Encoded": False,
    }
