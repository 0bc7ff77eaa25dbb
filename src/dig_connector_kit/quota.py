"""A provider's daily call quota, counted across every invocation (Marketo: 50,000 calls a day per
instance, shared by every integration; DIG takes the share its configuration gives it).

One item per connector and day (the provider's day): pk ``QUOTA#<connector>#<day>``, sk ``QUOTA``, a
counter taken with a conditional ADD, so that two invocations cannot both take the last call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from db.table import Table, is_conditional_failure

RETENTION_SECONDS = 3 * 86_400


class DailyQuota(Protocol):
    def take(self, connector: str, day: str, limit: int, calls: int = 1) -> bool:
        """Count ``calls`` against ``day``'s ``limit``; False (nothing counted) when they do not fit."""
        ...


class InMemoryDailyQuota:
    def __init__(self) -> None:
        self.used: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def take(self, connector: str, day: str, limit: int, calls: int = 1) -> bool:
        with self._lock:
            used = self.used.get((connector, day), 0)
            if used + calls > limit:
                return False
            self.used[(connector, day)] = used + calls
            return True


class DynamoDailyQuota:
    def __init__(self, table: Table, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def take(self, connector: str, day: str, limit: int, calls: int = 1) -> bool:
        from botocore.exceptions import ClientError

        key: dict[str, Any] = {"pk": {"S": f"QUOTA#{connector}#{day}"}, "sk": {"S": "QUOTA"}}
        try:
            self._table.call(
                "update_item",
                Key=key,
                UpdateExpression="ADD used :calls SET expiresAt = if_not_exists(expiresAt, :expires)",
                ConditionExpression="attribute_not_exists(used) OR used <= :room",
                ExpressionAttributeValues={
                    ":calls": {"N": str(calls)},
                    ":room": {"N": str(limit - calls)},
                    ":expires": {"N": str(int(self._clock()) + RETENTION_SECONDS)},
                },
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return False
        return True
