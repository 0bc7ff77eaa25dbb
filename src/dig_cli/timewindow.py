"""--since / --until: an ISO timestamp, or a duration back from now (30m, 6h, 7d)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from db.queries import Window

_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class BadTime(ValueError):
    pass


def moment(text: str, now: datetime) -> datetime:
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadTime(f"'{text}' is neither a duration (30m, 6h, 7d) nor an ISO timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def window(since: str, until: str | None, now: datetime | None = None) -> Window:
    now = now or datetime.now(UTC)
    start = moment(since, now)
    end = moment(until, now) if until else now
    if start >= end:
        raise BadTime(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
    return Window(start, end)
