"""Fixes to moto (5.2) for the local stack, which moves thousands of messages: without them
ReceiveMessage costs about 1 ms per message *in the queue* (1.3 s per call at a depth of 1,000),
PutEvents about 4 ms per entry a rule matches, and the whole stack stalls behind them.

- SQS: for each message it returns, ReceiveMessage checks the retention period through
  get_queue_attributes, which computes every attribute of the queue, ApproximateNumberOfMessages
  included (a walk over all its messages), twice per attribute asked for.
- SQS: each visibility check calls moto's unix_time_millis, which computes the epoch through
  datetime arithmetic (about 16 us), several times per queued message on every receive.
- EventBridge: delivering an event to a target compiles the same eight JSONPath expressions
  (the default input paths) with jsonpath_ng's parser, about 0.5 ms each, every time.
- The server: to route each request to a service, under a lock that every request takes, it lists
  and stats moto's two hundred package directories and then tries the URL patterns of every
  service; the answer for a host never changes.

Each replacement answers exactly what the original answers. The local stack applies them in its moto
process before it serves; nothing in a Lambda function imports this module.
"""

from __future__ import annotations

import datetime
import functools
import time
from collections.abc import Callable
from typing import Any

_applied = False


def _unix_time(dt: datetime.datetime | None = None) -> float:
    if dt is None:
        return time.time()
    return (dt - datetime.datetime(1970, 1, 1)).total_seconds()


def _unix_time_millis(dt: datetime.datetime | None = None) -> float:
    return _unix_time(dt) * 1000.0


def _within_retention_period(self: Any, queue_name: str, message: Any) -> bool:
    queue = self.get_queue(queue_name)
    return bool(int(queue.message_retention_period) + message.sent_timestamp / 1000 > time.time())


def _remembering_backends(get_backend_for_host: Callable[[Any, str | None], Any]) -> Callable[[Any, str | None], Any]:
    def get(self: Any, host: str | None) -> Any:
        known: dict[str | None, Any] = self.__dict__.setdefault("_dig_backend_for_host", {})
        if host not in known:
            known[host] = get_backend_for_host(self, host)
        return known[host]

    return get


def apply() -> None:
    """Patch moto's SQS and EventBridge models and its server's routing in this process (idempotent)."""
    global _applied
    if _applied:
        return
    import jsonpath_ng.ext
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs import models

    modules = frozenset(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    DomainDispatcherApplication.get_backend_for_host = _remembering_backends(  # type: ignore[method-assign,assignment]
        DomainDispatcherApplication.get_backend_for_host
    )

    models.unix_time = _unix_time
    models.unix_time_millis = _unix_time_millis
    models.SQSBackend.is_message_valid_based_on_retention_period = _within_retention_period  # type: ignore[method-assign]
    # moto.events.utils imports parse from jsonpath_ng.ext at each call: the cached one is found there.
    # A compiled expression is not changed by find(), so one per expression text serves every event.
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    _applied = True
