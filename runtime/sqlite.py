"""The embedded store's database: one SQLite file, safe to share between gRPC worker threads.

SQLite serialises writers itself; we add one lock around the connection so statements from
different threads never interleave inside a transaction, and BEGIN IMMEDIATE so a
read-then-write sequence cannot be overtaken by another writer.
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
import threading
from datetime import datetime, timedelta, UTC
from collections.abc import Iterator
from typing import ClassVar


# "database is locked" past the busy timeout, disk I/O errors: the store did not answer in time.
OUTAGES: tuple[type[Exception], ...] = (sqlite3.OperationalError,)


class Database:
    """One connection to a database file (or ":memory:"), shared by threads under a lock."""

    def __init__(self, path: str):
        if path != ":memory:":
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so transactions are explicit.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._conn.execute("PRAGMA synchronous=NORMAL")

    def apply_schema(self, statements: list[str]) -> None:
        """Runs idempotent DDL (CREATE ... IF NOT EXISTS) in one transaction."""
        with self.transaction() as conn:
            for statement in statements:
                conn.execute(statement)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself after some errors (disk full, I/O); a second
                # ROLLBACK would then fail and hide the error that matters.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple = ()) -> int:
        """One autocommitted statement; returns the number of rows it changed."""
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    def ping(self) -> None:
        self.query("SELECT 1")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(value: datetime | None) -> int | None:
    """Datetimes are stored as epoch milliseconds (the precision Cassandra keeps too).

    Integer arithmetic, not timestamp() * 1000: float rounding must never move a value by 1 ms.
    """
    return None if value is None else (value - _EPOCH) // _MS


def now_ms() -> int:
    return (datetime.now(UTC) - _EPOCH) // _MS


def from_ms(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + value * _MS


class SqliteStore:
    """Base of every SQLite adapter: one database file, its SCHEMA applied at open."""

    SCHEMA: ClassVar[list[str]] = []

    def __init__(self, db: Database):
        self._db = db

    @classmethod
    def open(cls, path: str):
        db = Database(path)
        db.apply_schema(cls.SCHEMA)
        return cls(db)

    def ping(self) -> None:
        self._db.ping()

    def close(self) -> None:
        self._db.close()
