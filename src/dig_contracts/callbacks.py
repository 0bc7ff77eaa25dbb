"""Callback URLs a connector hands to a provider, signed so that the DIG API can tell them from
forgeries without asking the provider for credentials it cannot send.

  {DIG_CALLBACK_URL}/<connector>/<callId>?sig=<HMAC-SHA256(key, "<connector>:<callId>")>

The key is a Secrets Manager secret that the API and the connectors read.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote


def signature(key: str, connector: str, call_id: str) -> str:
    return hmac.new(key.encode(), f"{connector}:{call_id}".encode(), hashlib.sha256).hexdigest()


def callback_url(base: str, key: str, connector: str, call_id: str) -> str:
    return f"{base.rstrip('/')}/{quote(connector)}/{quote(call_id)}?sig={signature(key, connector, call_id)}"


def verify(key: str, connector: str, call_id: str, given: str) -> bool:
    return hmac.compare_digest(signature(key, connector, call_id), given or "")
