"""The daily batch channel's second destination: Snowflake tables the program shares with Optimove's
account (the seed's "Snowflake Data Sharing"). Each data set's rows of the day (the same new and changed
rows its files carry) are staged in a temporary table, then MERGEd by key into ``<tablePrefix><NAME>``
in one statement: one transaction per data set and day. Rows travel as gzip CSV files PUT to a
temporary stage and COPYed INTO a temporary table (Snowflake's bulk-load path).

Each table has the data set's columns as its files do (all text, written as the files write them), and
two of DIG's: ``DIG_KEY`` (the row's key: the member id for customers, else the extract's key) and
``DIG_FEED_DAY`` (the day that last changed the row). A row is updated only when its content differs and
its day is not older than the table's, so building a day again changes nothing, and building an older day
again never puts its values over a newer day's.

The connection is snowflake-connector-python's (key-pair authentication); locally and in the tests,
fakesnow stands in for it (README: what a real Snowflake does differently).
"""

from __future__ import annotations

import csv
import gzip
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from connectors.optimove.feed.config import Snowflake

KEY_COLUMN = "DIG_KEY"
DAY_COLUMN = "DIG_FEED_DAY"


class TableLoad(Protocol):
    def write(self, key: str, values: Sequence[str]) -> None: ...

    def close(self) -> int:
        """Merge what was written; the rows inserted or changed."""
        ...


class TableSink(Protocol):
    def open(self, data_set: str, columns: Sequence[str], day: str) -> TableLoad: ...


def quoted(name: str) -> str:
    """An identifier as written (Optimove's column names keep their case): double-quoted, quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


STAGE = "DIG_FEED_STAGE"  # a temporary named stage: the session's own, gone with it
CSV_FORMAT = "FILE_FORMAT = (TYPE = CSV FIELD_OPTIONALLY_ENCLOSED_BY = '\"' COMPRESSION = GZIP)"


class SnowflakeLoad:
    """One data set's rows of the day: written to gzip CSV files on /tmp, each PUT to the session's stage
    and COPYed INTO a temporary table (Snowflake's bulk-load path: a row-by-row INSERT would take hours for
    a full load), then MERGEd into the data set's table in one statement."""

    def __init__(self, cursor: Any, table: str, columns: list[str], day: str, rows_per_file: int) -> None:
        self.cursor, self.table, self.columns, self.day = cursor, table, columns, day
        self.rows_per_file = rows_per_file
        self.staged = quoted(f"{table}_STAGED")
        self._directory = tempfile.TemporaryDirectory(prefix=f"dig-snowflake-{table}-")
        self._files = 0
        self._rows_in_file = 0
        self._handle: Any = None
        self._writer: Any = None

    def write(self, key: str, values: Sequence[str]) -> None:
        if self._writer is None:
            self._files += 1
            path = os.path.join(self._directory.name, f"{self.table}-{self._files:05d}.csv.gz")
            self._handle = gzip.open(path, "wt", encoding="utf-8", newline="")  # noqa: SIM115 - closed in _seal
            self._writer = csv.writer(self._handle)
        self._writer.writerow([*values, key, self.day])
        self._rows_in_file += 1
        if self._rows_in_file >= self.rows_per_file:
            self._seal()

    def _seal(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle, self._writer, self._rows_in_file = None, None, 0

    def close(self) -> int:
        try:
            self._seal()
            if not self._files:
                return 0
            where = f"@{STAGE}/{self.table}/"
            for name in sorted(os.listdir(self._directory.name)):
                path = os.path.join(self._directory.name, name)
                self.cursor.execute(f"PUT file://{path} {where} AUTO_COMPRESS = FALSE OVERWRITE = TRUE")
            self.cursor.execute(f"COPY INTO {self.staged} FROM {where} {CSV_FORMAT} PURGE = TRUE")
            return self._merge()
        finally:
            self._seal()
            self._directory.cleanup()

    def _merge(self) -> int:
        data = [c for c in self.columns if c not in (KEY_COLUMN, DAY_COLUMN)]
        key, day = quoted(KEY_COLUMN), quoted(DAY_COLUMN)
        changed = " OR ".join(f"t.{quoted(c)} IS DISTINCT FROM s.{quoted(c)}" for c in data)
        updates = ", ".join(f"{quoted(c)} = s.{quoted(c)}" for c in [*data, DAY_COLUMN])
        names = ", ".join(quoted(c) for c in self.columns)
        values = ", ".join(f"s.{quoted(c)}" for c in self.columns)
        self.cursor.execute(
            # Identifiers only, each quoted, from the validated configuration: no value is written into SQL.
            f"MERGE INTO {quoted(self.table)} t USING {self.staged} s ON t.{key} = s.{key} "  # noqa: S608
            f"WHEN MATCHED AND s.{day} >= t.{day} AND ({changed}) THEN UPDATE SET {updates} "
            f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
        )
        counts = self.cursor.fetchone() or (0, 0)
        return int(sum(int(n) for n in counts))


class SnowflakeTables:
    """A TableSink on a Snowflake connection (``connect``: snowflake.connector.connect with the secret's
    account, user and key pair, and the configuration's database, schema, warehouse and role)."""

    def __init__(self, connect: Callable[[], Any], destination: Snowflake) -> None:
        self._connect = connect
        self._destination = destination
        self._connection: Any = None

    def open(self, data_set: str, columns: Sequence[str], day: str) -> SnowflakeLoad:
        if self._connection is None:
            self._connection = self._connect()
            self._connection.cursor().execute(f"CREATE TEMPORARY STAGE IF NOT EXISTS {STAGE}")
        cursor = self._connection.cursor()
        table = f"{self._destination.tablePrefix}{data_set.upper()}"
        every = [*columns, KEY_COLUMN, DAY_COLUMN]
        definition = ", ".join(f"{quoted(c)} VARCHAR" for c in every)
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {quoted(table)} ({definition})")
        cursor.execute(f"CREATE OR REPLACE TEMPORARY TABLE {quoted(table + '_STAGED')} ({definition})")
        return SnowflakeLoad(cursor, table, every, day, self._destination.rowsPerFile)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def connect_snowflake(secret: dict[str, str], destination: Snowflake) -> Any:
    """snowflake-connector-python's connection, authenticated by key pair (the secret's ``privateKey``, a
    PKCS#8 PEM, with ``privateKeyPassphrase`` when it is encrypted)."""
    import snowflake.connector
    from cryptography.hazmat.primitives import serialization

    passphrase = secret.get("privateKeyPassphrase")
    key = serialization.load_pem_private_key(
        secret["privateKey"].encode(), password=passphrase.encode() if passphrase else None
    )
    der = key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    return snowflake.connector.connect(
        account=secret["account"],
        user=secret["user"],
        private_key=der,
        database=destination.database,
        schema=destination.schema_,
        warehouse=destination.warehouse,
        role=destination.role,
        application="DIG",
        session_parameters={"QUERY_TAG": "dig-optimove-feed"},
    )
