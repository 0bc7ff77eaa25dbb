"""API Gateway's own refusals (before the DIG API Lambda runs), in the API's error shape.

The CDK app turns these into gateway responses; the local gateway answers them the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class GatewayError:
    response_type: str  # API Gateway's GatewayResponse type
    status: int | None  # None keeps API Gateway's own status (DEFAULT_5XX)
    code: str
    message: str

    def body(self, request_id: str) -> str:
        return json.dumps(
            {"error": {"code": self.code, "message": self.message, "details": []}, "requestId": request_id}
        )


UNAUTHORIZED = GatewayError("UNAUTHORIZED", 401, "UNAUTHORIZED", "missing or invalid bearer token")
ACCESS_DENIED = GatewayError("ACCESS_DENIED", 403, "FORBIDDEN", "the token does not allow this route")
NO_ROUTE = GatewayError("MISSING_AUTHENTICATION_TOKEN", 404, "NOT_FOUND", "no such route")
THROTTLED = GatewayError("THROTTLED", 429, "THROTTLED", "too many requests; retry later")
TOO_LARGE = GatewayError("REQUEST_TOO_LARGE", 413, "PAYLOAD_TOO_LARGE", "the request is too large")
WAF_FILTERED = GatewayError("WAF_FILTERED", 403, "FORBIDDEN", "the request was blocked")
DEFAULT_5XX = GatewayError("DEFAULT_5XX", None, "GATEWAY_ERROR", "the gateway could not complete the request")

ALL = (UNAUTHORIZED, ACCESS_DENIED, NO_ROUTE, THROTTLED, TOO_LARGE, WAF_FILTERED, DEFAULT_5XX)
# API Gateway REST payload limit, and Lambda's synchronous invocation limit.
MAX_GATEWAY_PAYLOAD_BYTES = 10 * 1024 * 1024
MAX_LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
