"""ES Loyalty's pull of the return path (``GET /v1/inbound-events?after=CURSOR``): the inbound events
DIG recorded, oldest first, a page at a time, from the audit table's byEventType index (one partition
per event type and day), never a scan.

The cursor is where the last page ended (its receivedAt and message id), opaque to the client. A page
holds only events recorded more than ``SETTLE_SECONDS`` ago: an event whose record is being written
at the moment of the read (with an earlier receivedAt) is not skipped by a cursor already past it.
Without a cursor the feed starts ``since`` a moment (by default a day ago; at most as far back as the
audit trail keeps): a first pull, or one after a lost cursor, reads a few day partitions, not a month's.
An event whose member was forgotten (``dig member forget``) is left out; the cursor moves past it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from db.audit import message_from_item
from db.records import iso, utc_now
from dig_contracts.inbound import INBOUND_TYPES

if TYPE_CHECKING:
    from db.table import Table

TYPE_INDEX = "byEventType"
SETTLE_SECONDS = 5
MAX_PAGE = 200
DEFAULT_SINCE = timedelta(days=1)


@dataclass
class FeedPage:
    events: list[dict[str, Any]] = field(default_factory=list)
    nextCursor: str | None = None


def encode_cursor(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The position a cursor names; ValueError when it is not one this feed gave."""
    try:
        position = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        datetime.fromisoformat(position.split("#", 1)[0].replace("Z", "+00:00"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a cursor") from None
    if "#" not in position:
        raise ValueError("not a cursor")
    return position


class InboundFeed:
    def __init__(self, table: Table, retention_days: int = 30, clock: Callable[[], datetime] = utc_now) -> None:
        self._table = table
        self._retention_days = retention_days
        self._clock = clock

    def page(self, after: str | None, limit: int = 100, since: datetime | None = None) -> FeedPage:
        limit = max(1, min(limit, MAX_PAGE))
        now = self._clock()
        oldest = now - timedelta(days=self._retention_days)
        start = max(since, oldest) if since is not None else now - DEFAULT_SINCE
        position = decode_cursor(after) if after else iso(min(start, now))
        until = iso(now - timedelta(seconds=SETTLE_SECONDS))
        page = FeedPage(nextCursor=after)
        day = datetime.fromisoformat(position[:10]).date()
        while day <= now.date() and len(page.events) < limit:
            found = sorted(self._day(day.isoformat(), position, until, limit), key=lambda item: item["gsiTypeSk"]["S"])
            found = found[: limit - len(page.events)]
            # The index carries a message's row, not its payload: the items themselves, a page at a time.
            items = {i["pk"]["S"]: i for i in self._table.batch_get([{"pk": f["pk"], "sk": f["sk"]} for f in found])}
            for entry in found:
                page.nextCursor = encode_cursor(entry["gsiTypeSk"]["S"])
                item = items.get(entry["pk"]["S"])
                if item is None:  # expired since the index was read
                    continue
                record = message_from_item(item)
                if record.erasedAt is not None:  # its member was forgotten: not handed out again
                    continue
                page.events.append({"id": record.messageId, "receivedAt": record.receivedAt, "event": record.envelope})
            day += timedelta(days=1)
        return page

    def _day(self, day: str, after: str, until: str, limit: int) -> Iterator[dict[str, Any]]:
        for event_type in sorted(INBOUND_TYPES):
            answer = self._table.call(
                "query",
                IndexName=TYPE_INDEX,
                KeyConditionExpression="gsiTypePk = :pk AND gsiTypeSk BETWEEN :after AND :until",
                ExpressionAttributeValues={
                    ":pk": {"S": f"TYPE#{event_type}#{day}"},
                    ":after": {"S": after + "\x00"},  # strictly after the cursor's position
                    ":until": {"S": until},
                },
                Limit=limit,
            )
            yield from answer.get("Items", [])
