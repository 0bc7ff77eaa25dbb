"""The local API Gateway: turns HTTP requests into REST API proxy events for the real authorizer
and the real DIG API handler, with API Gateway's own refusals (dig_api.gateway_errors)."""

from __future__ import annotations

import base64
import fnmatch
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from dig_api import gateway_errors
from dig_api.gateway_errors import GatewayError
from dig_local.lambda_context import LocalContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
API_ID = "local"


class LocalGateway:
    def __init__(
        self,
        *,
        stage: str,
        api_handler: Handler,
        authorizer: Handler | None,
        routes: Mapping[str, Callable[[Request], Response]],
    ) -> None:
        self._stage = stage
        self._api_handler = api_handler
        self._authorizer = authorizer
        self._routes = routes
        # One container: the handler keeps per-request state in module globals, as Lambda allows.
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        for prefix, route in self._routes.items():
            if request.path.startswith(prefix):
                return route(request)(environ, start_response)
        return self._api(request)(environ, start_response)

    def _api(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        body = request.get_data()
        if len(body) > gateway_errors.MAX_GATEWAY_PAYLOAD_BYTES:
            return _error(gateway_errors.TOO_LARGE, request_id)
        path = request.path
        if not path.startswith("/v1/") or path == "/v1/":
            return _error(gateway_errors.NO_ROUTE, request_id)
        method_arn = f"arn:aws:execute-api:us-east-1:123456789012:{API_ID}/{self._stage}/{request.method}{path}"
        authorizer_context: dict[str, Any] = {}
        # As in the CDK app: provider callbacks carry a signed URL, and providers' webhooks their own
        # verification (dig_api.inbound), not a bearer token.
        if self._authorizer is not None and not path.startswith(("/v1/callbacks/", "/v1/inbound/")):
            header = request.headers.get("Authorization")
            if not header:
                return _error(gateway_errors.UNAUTHORIZED, request_id)
            try:
                with self._lock:
                    policy = self._authorizer(
                        {"type": "TOKEN", "authorizationToken": header, "methodArn": method_arn},
                        LocalContext("authorizer", 10),
                    )
            except Exception:
                return _error(gateway_errors.UNAUTHORIZED, request_id)
            if not allows(policy["policyDocument"], method_arn):
                return _error(gateway_errors.ACCESS_DENIED, request_id)
            authorizer_context = {"principalId": policy["principalId"], **policy.get("context", {})}
        try:
            text = body.decode()
            encoded = False
        except UnicodeDecodeError:
            text = base64.b64encode(body).decode()
            encoded = True
        event = {
            "resource": "/v1/{proxy+}",
            "path": path,
            "httpMethod": request.method,
            "headers": dict(request.headers.items()),
            "multiValueHeaders": {k: request.headers.getlist(k) for k in dict(request.headers.items())},
            "queryStringParameters": dict(request.args.items()) or None,
            "multiValueQueryStringParameters": {k: request.args.getlist(k) for k in request.args} or None,
            "pathParameters": {"proxy": path.removeprefix("/v1/")},
            "stageVariables": None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": API_ID,
                "stage": self._stage,
                "requestId": request_id,
                "resourcePath": "/v1/{proxy+}",
                "httpMethod": request.method,
                "path": f"/{self._stage}{path}",
                "identity": {"sourceIp": request.remote_addr or "127.0.0.1", "userAgent": request.user_agent.string},
                "authorizer": authorizer_context or None,
            },
            "body": text or None,
            "isBase64Encoded": encoded,
        }
        if len(json.dumps(event)) > gateway_errors.MAX_LAMBDA_PAYLOAD_BYTES:
            return _error(gateway_errors.TOO_LARGE, request_id)
        try:
            with self._lock:
                answer = self._api_handler(event, LocalContext("dig-api", 28))
        except Exception:
            return _error(gateway_errors.DEFAULT_5XX, request_id, status=502)
        payload = answer.get("body") or ""
        data = base64.b64decode(payload) if answer.get("isBase64Encoded") else payload.encode()
        # API Gateway merges the two header maps; a name in multiValueHeaders takes its list.
        merged: dict[str, list[str]] = {name: [value] for name, value in (answer.get("headers") or {}).items()}
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            merged[name] = list(values)
        headers = Headers([(name, value) for name, values in merged.items() for value in values])
        return Response(data, status=answer.get("statusCode", 200), headers=headers)


def allows(policy: dict[str, Any], method_arn: str) -> bool:
    """IAM's answer for one action: an explicit Deny wins, else any Allow."""
    allowed = False
    for statement in policy.get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(method_arn, pattern) for pattern in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _error(error: GatewayError, request_id: str, status: int | None = None) -> Response:
    return Response(error.body(request_id), status=status or error.status or 500, content_type="application/json")
