"""The embedded store's database: one SQLite file, safe to share between gRPC worker threads.

SQLite serialises writers itself; we add one lock around the connection so statements from
different threads never interleave inside a transaction, and BEGIN IMMEDIATE so a
read-then-write sequence cannot be overtaken by another writer.

Every statement (BEGIN and COMMIT included) runs inside its span (observability/store.py),
named for its operation and table, with the file's name as `db.namespace`. A statement's rows
are all fetched inside it, so the span lasts until the whole result is there.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from observability import store as spans
from runtime.stores import outages_become_unavailable

if TYPE_CHECKING:  # runtime.tables imports this module's time conversions
    from runtime.tables import SqliteTable, Table

_LOGGER = logging.getLogger(__name__)

# "database is locked" past the busy timeout, disk I/O errors: the store did not answer in time.
OUTAGES: tuple[type[Exception], ...] = (sqlite3.OperationalError,)


class Rows(list):
    """A statement's result: its rows, fetched, and how many rows it changed (`rowcount`)."""

    rowcount = -1

    def fetchone(self) -> sqlite3.Row | None:
        return self[0] if self else None

    def one(self) -> sqlite3.Row:
        """The row a statement must have found (an error if it did not)."""
        if len(self) != 1:
            raise LookupError(f"expected one row, found {len(self)}")
        return self[0]

    def fetchall(self) -> Rows:
        return self


class Transaction:
    """What the block of `Database.transaction()` runs its statements on."""

    def __init__(self, database: Database):
        self._database = database

    def execute(self, sql: str, params: tuple = ()) -> Rows:
        """One statement of the transaction (each in its span)."""
        return self._database._statement(sql, params)


def _fetch(cursor: sqlite3.Cursor) -> Rows:
    rows = Rows(cursor.fetchall())
    rows.rowcount = cursor.rowcount
    return rows


class Database:
    """One connection to a database file (or ":memory:"), shared by threads under a lock."""

    def __init__(self, path: str):
        self._name = pathlib.PurePath(path).name or path  # db.namespace of the spans
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

    def add_missing_columns(self, tables: Sequence[SqliteTable]) -> None:
        """Adds each column a table spec has and the file's table lacks, with its default for the rows
        already there: the schema rule both stores honour (runtime/tables.py)."""
        with self.transaction() as conn:
            for table in tables:
                present = [row["name"] for row in conn.execute(f"PRAGMA table_info({table.name})")]
                for definition in table.columns_to_add(present):
                    _LOGGER.info("adding to table %s the column %s", table.name, definition)
                    conn.execute(f"ALTER TABLE {table.name} ADD COLUMN {definition}")

    def _statement(self, sql: str, params: tuple = ()) -> Rows:
        """Runs one statement (the caller holds the lock) inside its span, and fetches its rows."""
        described = spans.describe(spans.SQLITE, self._name, sql)
        span = spans.start(described)
        if span is None:
            return _fetch(self._conn.execute(sql, params))
        try:
            rows = _fetch(self._conn.execute(sql, params))
        except BaseException as error:
            spans.failed(span, error, getattr(error, "sqlite_errorname", None))
            span.end()
            raise
        if described.operation.upper() == "SELECT":
            span.set_attribute("db.response.returned_rows", len(rows))
        span.end()
        return rows

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises."""
        with self._lock:
            self._statement("BEGIN IMMEDIATE")
            try:
                yield Transaction(self)
                self._statement("COMMIT")
            except BaseException:
                # SQLite rolls back by itself after some errors (disk full, I/O); a second
                # ROLLBACK would then fail and hide the error that matters.
                if self._conn.in_transaction:
                    self._statement("ROLLBACK")
                raise

    def query(self, sql: str, params: tuple = ()) -> Rows:
        with self._lock:
            return self._statement(sql, params)

    def execute(self, sql: str, params: tuple = ()) -> int:
        """One autocommitted statement; returns the number of rows it changed."""
        with self._lock:
            return self._statement(sql, params).rowcount

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


def from_ms(value: int) -> datetime:
    return _EPOCH + value * _MS


def from_ms_or_none(value: int | None) -> datetime | None:
    """For a nullable column."""
    return None if value is None else from_ms(value)


class SqliteStore:
    """Base of every SQLite adapter: one database file, its schema applied at open. The public methods
    of an adapter raise StoreUnavailable for SQLite's OUTAGES.

    Subclasses set TABLES (runtime.tables.Table specs: created, and given the columns they gained
    since a file was made) and SCHEMA (the rest of the DDL, run after them: other tables, indexes)."""

    TABLES: ClassVar[tuple[Table, ...]] = ()
    SCHEMA: ClassVar[list[str]] = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        outages_become_unavailable(cls, OUTAGES)

    def __init__(self, db: Database):
        self._db = db

    @classmethod
    def open(cls, path: str):
        db = Database(path)
        tables = [table.sqlite for table in cls.TABLES]
        db.apply_schema([table.ddl for table in tables])
        db.add_missing_columns(tables)
        db.apply_schema(cls.SCHEMA)
        return cls(db)

    def ping(self) -> None:
        self._db.ping()

    def close(self) -> None:
        self._db.close()


outages_become_unavailable(SqliteStore, OUTAGES)
