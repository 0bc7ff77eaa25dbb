"""Optimove's daily batch channel (issue: the Optimove daily batch channel): rows per second and peak
Python memory building a day from an N-row member extract (default 1,000,000), day 1 (every row new)
and day 2 (5% changed), with the files and the fingerprint state kept in memory-light stand-ins:
the parts are hashed and counted, not kept. `python -m benchmarks.feed [ROWS]`."""

from __future__ import annotations

import json
import sys
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

from connectors.optimove.feed.build import Extract, Fingerprints, build_day
from connectors.optimove.feed.config import BatchFeed

FEED = BatchFeed.model_validate(
    {
        "dataSets": [
            {
                "name": "customers",
                "kind": "customers",
                "extract": "memberAccounts",
                "columns": [
                    {"source": "tier", "target": "Tier"},
                    {"source": "pointsBalance", "target": "PointsBalance"},
                    {"source": "lifetimePoints", "target": "LifetimePoints"},
                    {"source": "enrolledAt", "target": "EnrolledAt"},
                    {"source": "country", "target": "Country"},
                ],
            }
        ],
        "destination": {"bucket": "bench-bucket", "prefix": "dig/"},
        "readinessTimeUtc": "05:00",
    }
)


class CountingSink:
    """Counts what would be written (bytes, objects) without holding it."""

    def __init__(self) -> None:
        self.bytes = self.objects = 0

    def open(self, key: str) -> Any:
        sink = self

        class Writer:
            def write(self, data: bytes) -> None:
                sink.bytes += len(data)

            def close(self) -> None:
                sink.objects += 1

        return Writer()

    def put(self, key: str, body: bytes) -> None:
        self.bytes += len(body)
        self.objects += 1


class DayStates:
    """The fingerprint state of the latest day only (what a deployed store reads back)."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, int], Fingerprints] = {}
        self.pending: dict[tuple[str, int], Fingerprints] = {}

    def before(self, data_set: str, day: str, partition: int) -> Fingerprints:
        return dict(self.latest.get((data_set, partition), {}))

    def save(self, data_set: str, day: str, partition: int, fingerprints: Fingerprints) -> None:
        self.pending[(data_set, partition)] = fingerprints

    def commit(self) -> None:
        self.latest, self.pending = self.pending, {}


class Forgetful(DayStates):
    def save(self, data_set: str, day: str, partition: int, fingerprints: Fingerprints) -> None:
        pass


def rows(count: int, changed_every: int = 0) -> Iterator[dict[str, Any]]:
    for i in range(count):
        tier = "SILVER" if changed_every and i % changed_every == 0 else "GOLD"
        yield {
            "memberId": f"M-{i:09d}",
            "tier": tier,
            "pointsBalance": i % 50_000,
            "lifetimePoints": i % 900_000,
            "enrolledAt": "2024-01-31",
            "country": "US",
        }


def build(states: DayStates, day: str, count: int, changed_every: int) -> tuple[Any, float, CountingSink]:
    sink = CountingSink()
    extract = Extract("f-" + day, "memberAccounts", f"{day}T02:00:00Z", lambda: rows(count, changed_every))
    started = time.perf_counter()
    outcome = build_day(FEED, day, [extract], sink, states)
    return outcome, time.perf_counter() - started, sink


def run(count: int = 1_000_000) -> dict[str, Any]:
    """Timed untraced; the peak memory from a second, traced build of day 1 (tracing slows it), with
    the state written nowhere (in AWS it goes to S3 a partition at a time)."""
    states = DayStates()
    results: dict[str, Any] = {"rows": count}
    for day, changed_every in (("2026-12-01", 0), ("2026-12-02", 20)):
        outcome, seconds, sink = build(states, day, count, changed_every)
        states.commit()
        results[day] = {
            "rows_sent": outcome.data_sets["customers"].sent,
            "seconds": round(seconds, 1),
            "rows_per_second": round(count / seconds),
            "gzip_mib_written": round(sink.bytes / 2**20, 1),
        }
    tracemalloc.start()
    build(Forgetful(), "2026-12-01", count, 0)  # the state kept nowhere: the builder's own memory
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results["peak_python_mib_day_1"] = round(peak / 2**20, 1)
    return results


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=2))
