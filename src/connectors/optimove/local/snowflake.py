"""Optimove's Snowflake account, locally: fakesnow (Snowflake's SQL on DuckDB) patched over
snowflake-connector-python in the local stack's process, its databases in a directory of their own so
that every connection (the feed job's, the simulator's reads) sees the same tables; and the connection
secret the local stack holds, its key pair made at start (never a private key in the repository).
Never imported by Lambda code. What a real Snowflake does differently: README, "The daily batch channel"."""

from __future__ import annotations

import tempfile
import threading
from typing import Any

_lock = threading.Lock()
_patch: Any = None


def start() -> None:
    """fakesnow over snowflake.connector.connect for this process, once; it stays for the process's life."""
    global _patch
    with _lock:
        if _patch is not None:
            return
        import fakesnow

        _patch = fakesnow.patch(db_path=tempfile.mkdtemp(prefix="dig-local-snowflake-"))
        _patch.__enter__()


def counts(database: str, schema: str, table: str, key_prefix: str = "") -> dict[str, Any]:
    """A table's rows (those whose DIG_KEY starts with ``key_prefix``), in all and by DIG_FEED_DAY."""
    import snowflake.connector

    from connectors.optimove.feed.tables import DAY_COLUMN, KEY_COLUMN, quoted

    start()
    connection = snowflake.connector.connect(database=database, schema=schema)
    try:
        cursor = connection.cursor()
        cursor.execute(
            f"SELECT {quoted(DAY_COLUMN)}, COUNT(*) FROM {quoted(table)} "  # noqa: S608 - quoted identifiers
            f"WHERE STARTSWITH({quoted(KEY_COLUMN)}, %s) GROUP BY 1 ORDER BY 1",
            (key_prefix,),
        )
        by_day = {str(day): int(n) for day, n in cursor.fetchall()}
    except Exception as error:  # no such table yet
        return {"table": table, "rows": 0, "byDay": {}, "error": str(error)[:200]}
    finally:
        connection.close()
    return {"table": table, "rows": sum(by_day.values()), "byDay": by_day}


def local_secret() -> dict[str, str]:
    """What the feed job's Snowflake secret holds in the local stack: a key pair made now (fakesnow checks
    none of it; the job parses it as it would a real one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode()
    return {"account": "local-optimove", "user": "DIG_FEED", "privateKey": pem}
