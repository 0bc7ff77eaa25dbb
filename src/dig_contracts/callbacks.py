"""Callback URLs a connector hands to a provider, signed so that the DIG API can tell them from
forgeries without asking the provider for credentials it cannot send.

  {DIG_CALLBACK_URL}/<connector>/<callId>?exp=<unix seconds>&sig=<HMAC-SHA256(key, "<connector>:<callId>:<exp>")>

The key is a Secrets Manager secret that the API and the connectors read. A URL is good until its
``exp`` (DEFAULT_VALIDITY_SECONDS after the call, at most MAX_VALIDITY_SECONDS): the call log that
maps results to messages is kept three days, and results later than that could not be applied.
The signature is a query parameter: API Gateway's access logs hold no query string, and the X-Ray
sampling rule of infra/api.py never traces the callback route (X-Ray would record the whole URL).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

DEFAULT_VALIDITY_SECONDS = 3 * 86_400
MAX_VALIDITY_SECONDS = 7 * 86_400


def signature(key: str, connector: str, call_id: str, expires_at: int) -> str:
    return hmac.new(key.encode(), f"{connector}:{call_id}:{expires_at}".encode(), hashlib.sha256).hexdigest()


def callback_url(
    base: str,
    key: str,
    connector: str,
    call_id: str,
    *,
    validity_seconds: int = DEFAULT_VALIDITY_SECONDS,
    now: float | None = None,
) -> str:
    if not 0 < validity_seconds <= MAX_VALIDITY_SECONDS:
        raise ValueError(f"a callback URL is valid for 1 to {MAX_VALIDITY_SECONDS} seconds")
    expires_at = int(now if now is not None else time.time()) + validity_seconds
    sig = signature(key, connector, call_id, expires_at)
    return f"{base.rstrip('/')}/{quote(connector)}/{quote(call_id)}?exp={expires_at}&sig={sig}"


def verify(key: str, connector: str, call_id: str, expires: str, given: str, *, now: float | None = None) -> bool:
    """Signed by DIG for this connector and call, and not expired. Never raises on what a client sent
    (a non-ASCII signature, a non-numeric expiry): such a URL is simply not one DIG signed."""
    if not (expires.isascii() and expires.isdigit() and given.isascii()) or len(expires) > 12:
        return False
    expires_at = int(expires)
    moment = now if now is not None else time.time()
    if not moment <= expires_at <= moment + MAX_VALIDITY_SECONDS:
        return False
    return hmac.compare_digest(signature(key, connector, call_id, expires_at).encode(), given.encode())
