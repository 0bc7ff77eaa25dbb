"""The batch channel's logic: an extract's arrival recorded for the day it feeds; every quarter hour,
the day whose build is due built once (and a late day or a missing extract reported); an operator's
rebuild of any day. Ports in, no AWS here (handler.py wires them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from connectors.optimove.feed.build import Extract, FingerprintStore, build_day
from connectors.optimove.feed.config import BatchFeed, Destination, Snowflake
from connectors.optimove.feed.files import MANIFEST, Sink, day_prefix
from connectors.optimove.feed.tables import TableSink
from dig_connector_kit.ports import FeedInput, FeedRun, FeedStore, feed_day, iso, parse_iso, readiness, utc_now
from dig_contracts.files import FileReadyDetail

BUILD_LEAD_MINUTES = 60  # the day is built this long before Optimove's readiness time


class FeedNotConfigured(LookupError):
    pass


class DestinationRefused(PermissionError):
    pass


def check_destination(destination: Destination, deployed: Callable[[str], str | None]) -> None:
    """The stack's role may write one bucket (assume one role, use one key), named at deploy time:
    a configuration naming another is refused, saying which setting to deploy. ``deployed(name)``:
    the deploy-time value of ``bucket``, ``roleArn`` or ``kmsKeyArn`` (empty: not restricted)."""
    for name in ("bucket", "roleArn", "kmsKeyArn"):
        allowed, configured = deployed(name), getattr(destination, name) or ""
        if allowed and configured != allowed:
            raise DestinationRefused(
                f"batchFeed.destination.{name} is {configured or 'unset'}, but this deployment may use only "
                f"{allowed}; change the configuration or deploy with the matching setting (README: the daily "
                "batch channel, Access)"
            )


@dataclass
class Tick:
    """What a scheduled check found and did."""

    day: str
    built: FeedRun | None = None
    late: bool = False  # past the readiness time and the day not complete
    missing_extracts: list[str] = field(default_factory=list)
    error: str | None = None  # the build failed (its run is recorded FAILED with the reason)


def record_arrival(feed: BatchFeed | None, records: FeedStore, detail: FileReadyDetail) -> str | None:
    """Record ``detail``'s extract for the day it feeds (the first not built yet); that day, or None
    when no data set maps the extract (or there is no batch channel)."""
    if feed is None or detail.name not in {d.extract for d in feed.dataSets}:
        return None
    day = feed_day(parse_iso(detail.completedAt), feed.readinessTimeUtc, BUILD_LEAD_MINUTES)
    while records.complete(day):  # arrived after its day was built: the next day takes it
        day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    found = FeedInput(detail.fileId, detail.name, detail.completedAt, detail.bucket, list(detail.parts), detail.rows)
    records.record_input(day, found)
    return day


class FeedService:
    def __init__(
        self,
        feed: Callable[[], BatchFeed | None],
        records: FeedStore,
        read_rows: Callable[[FeedInput], Iterable[Mapping[str, Any]]],
        sink_for: Callable[[Destination], Sink],
        state: Callable[[], FingerprintStore],
        clock: Callable[[], datetime] = utc_now,
        tables_for: Callable[[Snowflake], TableSink] | None = None,
    ) -> None:
        self._feed, self._records, self._read_rows = feed, records, read_rows
        self._sink_for, self._state, self._clock = sink_for, state, clock
        self._tables_for = tables_for

    def configured(self) -> BatchFeed:
        feed = self._feed()
        if feed is None:
            raise FeedNotConfigured("the Optimove configuration has no batchFeed")
        return feed

    def record_arrival(self, detail: FileReadyDetail) -> str | None:
        return record_arrival(self._feed(), self._records, detail)

    def tick(self) -> Tick | None:
        """The day whose build time passed last: built if it is not complete; late once its
        readiness time passed without its files. None when there is no batch channel to run."""
        feed = self._feed()
        if feed is None:
            return None
        now = self._clock()
        day = (
            date.fromisoformat(feed_day(now, feed.readinessTimeUtc, BUILD_LEAD_MINUTES)) - timedelta(days=1)
        ).isoformat()
        outcome = Tick(day)
        if not self._records.complete(day):
            try:
                outcome.built = self.run(day, trigger="schedule")
                outcome.missing_extracts = outcome.built.missingExtracts
            except Exception as error:  # recorded; the handler reports the day late, then fails
                outcome.error = f"{type(error).__name__}: {error}"
        outcome.late = not self._records.complete(day) and now >= readiness(day, feed.readinessTimeUtc)
        return outcome

    def run(self, day: str, *, full: bool = False, trigger: str = "operator") -> FeedRun:
        """Build ``day`` (again) from every extract recorded for it; the run is recorded either way."""
        feed = self.configured()
        started = time.monotonic()
        run = FeedRun(day=day, startedAt=iso(self._clock()), trigger=trigger, full=full)
        try:
            inputs = self._records.inputs(day)
            run.extracts = sorted(i.fileId for i in inputs)
            forgotten = self._records.forgotten()
            extracts = [
                Extract(i.fileId, i.name, i.completedAt, rows=lambda i=i: self._read_rows(i))  # type: ignore[misc]
                for i in inputs
            ]
            sink = self._sink_for(feed.destination)
            tables = None
            if feed.snowflake is not None:
                if self._tables_for is None:
                    raise FeedNotConfigured("batchFeed.snowflake is configured; this job has no Snowflake connection")
                tables = self._tables_for(feed.snowflake)
            try:
                outcome = build_day(
                    feed, day, extracts, sink, self._state(), forgotten=forgotten.__contains__, full=full, tables=tables
                )
            finally:
                close = getattr(tables, "close", None)
                if close is not None:
                    close()
            run.missingExtracts = outcome.missing_extracts
            for name, data_set in outcome.data_sets.items():
                run.considered[name], run.sent[name] = data_set.considered, data_set.sent
                if data_set.merged is not None:
                    run.merged[name] = data_set.merged
                if data_set.skipped:
                    run.skipped[name] = data_set.skipped
            run.files = len(outcome.manifest.parts)
            run.bytes = sum(p.bytes for p in outcome.manifest.parts)
            run.status = "COMPLETE"
            self._records.mark_complete(day, f"{day_prefix(feed.destination.prefix, day)}{MANIFEST}")
        except Exception as error:
            run.status, run.error = "FAILED", f"{type(error).__name__}: {error}"[:500]
            raise
        finally:
            run.seconds = round(time.monotonic() - started, 3)
            self._records.save_run(run)
        return run
