"""ES Loyalty's webhook endpoint, as a double: it verifies each request's Standard Webhooks signature
with the shared secret (the ``standardwebhooks`` library, as ES Loyalty would), answers 204 to a
verified one and 401 to anything else, and records what it received, verified or not.

Served under ``/_sim/esloyalty``:
  POST /webhooks; GET /received (each request: headers, raw body, verified); DELETE /received;
  the shared surface (GET/DELETE /requests, POST/DELETE /faults: dig_connector_kit.testing.double),
  so a test can make ES Loyalty refuse for a while (``{"status": 503, "times": 3}``).
Never imported by Lambda code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connectors.esloyalty.client import WEBHOOK_CALL
from connectors.esloyalty.local import WEBHOOK_PATH
from dig_connector_kit.testing.double import Answer, ProviderSimulator


class EsLoyaltySimulator(ProviderSimulator):
    def __init__(self, *, secret: str, clock: Callable[[], float] = time.monotonic, seed: int = 7) -> None:
        super().__init__(clock=clock, seed=seed)
        self.secret = secret
        self.received: list[dict[str, Any]] = []

    def call_name(self, method: str, path: str) -> str | None:
        return WEBHOOK_CALL if (method, path) == ("POST", WEBHOOK_PATH) else None

    def control(self, method: str, path: str, body: bytes) -> Answer | None:
        if path != "/received":
            return None
        with self._lock:
            if method == "GET":
                return Answer(200, list(self.received))
            if method == "DELETE":
                self.received.clear()
                return Answer(204, None)
        return None

    def serve(self, call: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        return self.faulted(call, lambda: self._receive(headers, body))

    def _receive(self, headers: dict[str, str], body: bytes) -> Answer:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            Webhook(self.secret).verify(body, lowered, json_parse=False)
            verified = True
        except WebhookVerificationError:
            verified = False
        kept = {k: v for k, v in lowered.items() if k.startswith("webhook-") or k == "content-type"}
        with self._lock:
            self.received.append({"headers": kept, "body": body.decode("utf-8", "replace"), "verified": verified})
        return Answer(204, None) if verified else Answer(401, {"error": "the signature does not verify"})
