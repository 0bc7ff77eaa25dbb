"""Building one day of the batch channel from the extracts that arrived: which rows are new or
changed in content since the last day sent, written as the day's files, with the state that the
next day compares against.

It streams, in two passes over each extract, so that memory does not grow with it: the mapped rows
are spread over ``partitions`` temporary files by a hash of their key; then each partition is read
with the fingerprints of that partition as of the day before (``FingerprintStore``), its rows are
compared, and the new or changed ones written in key order. Memory holds one partition (10,000,000
rows in 256 partitions: about 40,000 rows). The state is kept per day, so rebuilding a day compares
against the same state as the first build and gives the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.optimove.feed.config import BatchFeed, DataSet, HistoryMode
from connectors.optimove.feed.files import Manifest, Sink, data_set_file, day_prefix, finish_day
from connectors.optimove.feed.rows import RowMapper, RowSkipped, header, optimove_datetime
from connectors.optimove.feed.rows import fingerprint as row_fingerprint
from connectors.optimove.feed.tables import TableSink
from dig_contracts.extracts import EXTRACTS

DEFAULT_PARTITIONS = 256
MEBIBYTE = 1024 * 1024

Fingerprints = dict[str, bytes]  # key -> fingerprint of the row last sent


class FingerprintStore(Protocol):
    """The fingerprints of the rows sent, per data set and partition, as of each day built."""

    def before(self, data_set: str, day: str, partition: int) -> Fingerprints:
        """As of the latest day built before ``day`` (empty when none)."""
        ...

    def save(self, data_set: str, day: str, partition: int, fingerprints: Fingerprints) -> None: ...


@dataclass(frozen=True)
class Extract:
    """One extract that arrived for the day: its FILE_READY's fileId, when DIG saw it complete (each
    row's ``LastUpdated``), and its validated rows."""

    file_id: str
    name: str
    completed_at: str
    rows: Callable[[], Iterable[Mapping[str, Any]]]


@dataclass
class DataSetOutcome:
    considered: int = 0
    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # "field: rule" -> rows
    merged: int | None = None  # rows the MERGE inserted or changed in its Snowflake table (None: no table)


@dataclass
class DayOutcome:
    day: str
    manifest: Manifest
    data_sets: dict[str, DataSetOutcome]
    missing_extracts: list[str]


def partition_of(key: str, partitions: int) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") % partitions


def build_day(
    feed: BatchFeed,
    day: str,
    extracts: list[Extract],
    sink: Sink,
    state: FingerprintStore,
    *,
    forgotten: Callable[[str], bool] = lambda member: False,
    full: bool = False,
    partitions: int = DEFAULT_PARTITIONS,
    tables: TableSink | None = None,
) -> DayOutcome:
    """Write ``day``'s files from ``extracts`` (its fileIds in the manifest), and the state after it.
    ``full``: every row, as a historical load (also the feed's ``history: full``). ``tables``: the same
    rows MERGEd into each data set's table too (the Snowflake destination), after its files."""
    prefix = day_prefix(feed.destination.prefix, day)
    manifest = Manifest(day=day, format=feed.format.value, extracts=sorted(e.file_id for e in extracts))
    outcomes: dict[str, DataSetOutcome] = {}
    every_row = full or feed.history is HistoryMode.FULL
    for data_set in feed.dataSets:
        arrived = sorted((e for e in extracts if e.name == data_set.extract), key=lambda e: e.completed_at)
        outcome = outcomes[data_set.name] = DataSetOutcome()
        out = data_set_file(
            sink, prefix, data_set.name, header(data_set), feed.format, feed.maxFileMegabytes * MEBIBYTE
        )
        load = tables.open(data_set.name, header(data_set), day) if tables is not None else None
        with tempfile.TemporaryDirectory(prefix=f"dig-feed-{data_set.name}-") as scratch:
            spread = _spread(data_set, arrived, scratch, partitions, outcome, forgotten)
            for partition in range(partitions):
                known = state.before(data_set.name, day, partition)
                rows = spread.read(partition)
                for key in sorted(rows):
                    values, last_updated, _member = rows[key]
                    fingerprint = row_fingerprint(values)
                    if every_row or known.get(key) != fingerprint:
                        out.write([*values, last_updated])
                        if load is not None:
                            load.write(key, [*values, last_updated])
                        outcome.sent += 1
                    known[key] = fingerprint
                for key in spread.forgotten_keys.get(partition, set()):
                    known.pop(key, None)
                state.save(data_set.name, day, partition, known)
        manifest.parts.extend(out.close())
        manifest.rows[data_set.name] = outcome.sent
        if load is not None:
            outcome.merged = load.close()
    finish_day(sink, prefix, manifest)
    arrived_names = {e.name for e in extracts}
    return DayOutcome(day, manifest, outcomes, [name for name in feed.expected() if name not in arrived_names])


@dataclass
class _Spread:
    directory: str
    partitions: int
    forgotten_keys: dict[int, set[str]] = field(default_factory=dict)

    def path(self, partition: int) -> str:
        return os.path.join(self.directory, f"{partition:05d}")

    def read(self, partition: int) -> dict[str, tuple[tuple[str, ...], str, str]]:
        """The partition's rows by key; a later row of a key replaces an earlier one."""
        rows: dict[str, tuple[tuple[str, ...], str, str]] = {}
        if not os.path.exists(self.path(partition)):
            return rows
        with open(self.path(partition), "rb") as source:
            while True:
                try:
                    key, values, last_updated, member = pickle.load(source)  # noqa: S301 - our own temp file
                except EOFError:
                    return rows
                rows[key] = (values, last_updated, member)


def _spread(
    data_set: DataSet,
    extracts: list[Extract],
    directory: str,
    partitions: int,
    outcome: DataSetOutcome,
    forgotten: Callable[[str], bool],
) -> _Spread:
    spread = _Spread(directory, partitions)
    map_row = RowMapper(data_set, EXTRACTS[data_set.extract].key)
    handles: dict[int, Any] = {}
    try:
        for extract in extracts:
            last_updated = optimove_datetime(extract.completed_at)
            for row in extract.rows():
                outcome.considered += 1
                try:
                    mapped = map_row(row)
                except RowSkipped as skipped:
                    reason = f"{skipped.field}: {skipped.rule}"
                    outcome.skipped[reason] = outcome.skipped.get(reason, 0) + 1
                    continue
                partition = partition_of(mapped.key, partitions)
                if forgotten(mapped.member):  # erased: never sent again, and out of the state
                    spread.forgotten_keys.setdefault(partition, set()).add(mapped.key)
                    continue
                handle = handles.get(partition)
                if handle is None:
                    handle = handles[partition] = open(spread.path(partition), "ab")  # noqa: SIM115
                pickle.dump((mapped.key, mapped.values, last_updated, mapped.member), handle)
    finally:
        for handle in handles.values():
            handle.close()
    return spread


def rows_of(lines: Iterable[bytes]) -> Iterator[Mapping[str, Any]]:
    """An extract's validated rows from its parts' JSON lines."""
    for line in lines:
        if line.strip():
            yield json.loads(line)
