"""The daily batch channel's Snowflake destination on fakesnow (Snowflake's SQL on DuckDB, in process: no
socket): each day's new and changed rows MERGEd by key, exactly those; a rebuild changes nothing; an older
day built again never puts its values over a newer day's; the same rows as the day's files."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.optimove.feed.build import build_day
from connectors.optimove.feed.config import Snowflake
from connectors.optimove.feed.tables import DAY_COLUMN, KEY_COLUMN, SnowflakeTables, quoted
from connectors.optimove.tests.test_feed import MemoryFingerprints, MemorySink, extract, feed, member

pytestmark = [
    # The connector's vendored urllib3 probes for IPv6 when imported (a socket object, never a connection):
    # pytest-socket refuses it, urllib3 takes the refusal as "no IPv6"; nothing is sent anywhere.
    pytest.mark.filterwarnings("ignore:A test tried to use socket.socket:UserWarning"),
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning"),  # fakesnow's own
]
DESTINATION = Snowflake.model_validate({"database": "OPTIMOVE_SHARE", "schema": "DIG", "rowsPerFile": 1000})
TABLE = "OPTIMOVE_CUSTOMERS"


@pytest.fixture
def connection() -> Iterator[Any]:
    import fakesnow
    import snowflake.connector

    with fakesnow.patch():
        yield snowflake.connector.connect(database=DESTINATION.database, schema=DESTINATION.schema_)


def rows(connection: Any) -> dict[str, tuple[Any, ...]]:
    cursor = connection.cursor()
    cursor.execute(f"SELECT * FROM {quoted(TABLE)}")  # noqa: S608 - a quoted identifier
    names = [d[0] for d in cursor.description]
    return {row[names.index(KEY_COLUMN)]: row for row in cursor.fetchall()}


def by_day(connection: Any) -> dict[str, int]:
    cursor = connection.cursor()
    cursor.execute(f"SELECT {quoted(DAY_COLUMN)}, COUNT(*) FROM {quoted(TABLE)} GROUP BY 1")  # noqa: S608
    return {day: int(n) for day, n in cursor.fetchall()}


def test_each_day_merges_exactly_its_new_and_changed_rows_and_a_rebuild_changes_nothing(connection: Any) -> None:
    tables = SnowflakeTables(lambda: connection, DESTINATION)
    sink, state = MemorySink(), MemoryFingerprints()
    members = [member(i) for i in range(2500)]  # three files of at most 1,000 rows, one COPY
    one = build_day(feed(), "2026-12-01", [extract(members, "2026-12-01T02:00:00Z")], sink, state, tables=tables)
    assert one.data_sets["customers"].merged == 2500
    changed = [member(i, tier="SILVER") if i % 50 == 0 else member(i) for i in range(2500)]
    new = [member(i) for i in range(2500, 2520)]
    day_two = [extract(changed + new, "2026-12-02T02:00:00Z", "f-2")]
    two = build_day(feed(), "2026-12-02", day_two, sink, state, tables=tables)
    assert (two.data_sets["customers"].sent, two.data_sets["customers"].merged) == (70, 70)
    assert by_day(connection) == {"2026-12-01": 2450, "2026-12-02": 70}  # exactly the day's rows carry its day
    table = rows(connection)
    assert table["M-00000"][:5] == ("M-00000", "SILVER", "100", "2024-01-31", "2026-12-02 02:00:00")
    files = {row["CustomerID"] for row in sink.rows("dig/2026-12-02/")}
    assert files == {key for key, row in table.items() if row[-1] == "2026-12-02"}  # the files' rows, no other
    again = build_day(feed(), "2026-12-02", day_two, sink, state, tables=tables)
    assert again.data_sets["customers"].merged == 0
    older = build_day(feed(), "2026-12-01", [extract(members, "2026-12-01T02:00:00Z")], sink, state, tables=tables)
    assert older.data_sets["customers"].merged == 0  # day one again: day two's values stand
    assert rows(connection)["M-00000"][1] == "SILVER"
    assert len(rows(connection)) == 2520


def test_the_connection_is_key_pair_authenticated_from_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    import snowflake.connector

    from connectors.optimove.feed.tables import connect_snowflake
    from connectors.optimove.local.snowflake import local_secret

    given: dict[str, Any] = {}
    monkeypatch.setattr(snowflake.connector, "connect", lambda **kwargs: given.update(kwargs))
    destination = Snowflake.model_validate(
        {"database": "OPTIMOVE_SHARE", "schema": "DIG", "warehouse": "DIG_WH", "role": "DIG_FEED"}
    )
    connect_snowflake(local_secret(), destination)
    assert given.pop("private_key")[:2] == b"\x30\x82"  # a DER (PKCS#8) key, never the PEM text
    assert given == {
        "account": "local-optimove",
        "user": "DIG_FEED",
        "database": "OPTIMOVE_SHARE",
        "schema": "DIG",
        "warehouse": "DIG_WH",
        "role": "DIG_FEED",
        "application": "DIG",
        "session_parameters": {"QUERY_TAG": "dig-optimove-feed"},
    }
