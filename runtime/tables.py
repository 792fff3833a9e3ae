"""A table written once: its columns come from a dataclass, for both stores (SQLite and Cassandra).

    PRODUCTS = Table("products", Product, key="id", columns=[
        # Cassandra keeps stock in a table of its own; SQLite beside the product.
        column("stock", stores=SQLITE_ONLY, constraint="CHECK (stock >= 0)"),
    ])
    PRODUCTS.sqlite.ddl                    # CREATE TABLE IF NOT EXISTS products (id TEXT NOT NULL, ..., PRIMARY KEY (id))
    PRODUCTS.cassandra.insert()            # INSERT INTO products (id, name, ...) VALUES (?, ?, ...)
    PRODUCTS.cassandra.values(product)     # its parameters, each value converted for the store
    PRODUCTS.sqlite.row(row)               # a Product again
    PRODUCTS.sqlite.update(PRODUCTS.sqlite.settable(without=("created_at",)))   # UPDATE products SET ... WHERE id = ?

Each field of the dataclass is a column of the same name. Its type in each store comes from the
field's annotation (KINDS: str, int, float, bool, bytes, datetime, tuple[str, ...], each optionally
`| None`); `column()` declares what differs: another kind, a column only one store keeps, an SQLite
constraint, or a column that is not a field (a property written with the row, or a column the
adapter's own statements write). Statements with conditions (IF ..., compare-and-set) stay in the
adapters; the texts here are plain and adapters declare them read, write or conditional as before.

Schema evolution, one rule for both stores: when a store opens, each column of the spec that its
existing table lacks is added (ALTER TABLE ... ADD; `columns_to_add`), and rows written before read
as the column's default, its field's dataclass default. SQLite stores that default in the column
(DEFAULT); Cassandra has no such thing, so its NULL is read as the default. A column whose field has
no default (and is not optional) cannot be added to an existing table, and a key column never can.
A collection column added later reads as empty in older rows, whatever its default: Cassandra
cannot tell an empty collection from none. Dropping or renaming a column is not automatic.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from runtime.sqlite import from_ms, to_ms

SQLITE, CASSANDRA = "sqlite", "cassandra"
BOTH, SQLITE_ONLY, CASSANDRA_ONLY = frozenset({SQLITE, CASSANDRA}), frozenset({SQLITE}), frozenset({CASSANDRA})
# What a column holds: a field of the dataclass; a property of it, written with the row and never read
# back (SQLite's case-folded unique keys); or a value only the adapter's own statements write and read.
FIELD, DERIVED, OWN = "field", "derived", "own"


def _same(value: Any) -> Any:
    return value


def ms_precision(value: datetime | None) -> datetime | None:
    """To the millisecond, in UTC: what both stores keep (Cassandra's timestamp precision), so a
    value read back compares equal to the one written."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)


def _aware(value: datetime) -> datetime:
    """The driver returns naive UTC datetimes; services work with aware ones."""
    return value.replace(tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Kind:
    """How values of one type are kept: the column type in each store, and the conversion to the
    store and back (never called with None: NULL is read as the column's default instead).

    `empty` is what a NULL reads as when the field declares no default. `collection`: Cassandra keeps
    an empty collection as NULL, so a NULL always reads as `empty`."""

    cql: str
    sqlite: str
    empty: Any = None
    to_cql: Callable[[Any], Any] = _same
    from_cql: Callable[[Any], Any] = _same
    to_sqlite: Callable[[Any], Any] = _same
    from_sqlite: Callable[[Any], Any] = _same
    collection: bool = False

    def to_store(self, store: str) -> Callable[[Any], Any]:
        return self.to_sqlite if store == SQLITE else self.to_cql

    def from_store(self, store: str) -> Callable[[Any], Any]:
        return self.from_sqlite if store == SQLITE else self.from_cql


def as_text(encode: Callable[[Any], str], decode: Callable[[str], Any]) -> Kind:
    """A value kept as text in both stores, written by `encode` and read by `decode` (JSON, say)."""
    return Kind("text", "TEXT", to_cql=encode, from_cql=decode, to_sqlite=encode, from_sqlite=decode)


TEXT = Kind("text", "TEXT", empty="")
INTEGER = Kind("bigint", "INTEGER", empty=0)
FLOAT = Kind("double", "REAL", empty=0.0)
BOOLEAN = Kind("boolean", "INTEGER", empty=False, to_sqlite=int, from_sqlite=bool)
BYTES = Kind("blob", "BLOB", empty=b"", from_cql=bytes, from_sqlite=bytes)
# Milliseconds in both: Cassandra's timestamp, and SQLite's epoch-millisecond integers (runtime/sqlite.py).
TIMESTAMP = Kind("timestamp", "INTEGER", to_cql=ms_precision, from_cql=_aware, to_sqlite=to_ms, from_sqlite=from_ms)
TEXT_LIST = Kind("list<text>", "TEXT", empty=(), to_cql=list, from_cql=tuple,
                 to_sqlite=lambda values: json.dumps(list(values)), from_sqlite=lambda text: tuple(json.loads(text)),
                 collection=True)
# A field's annotation -> its kind, unless column() gives one.
KINDS: dict[Any, Kind] = {str: TEXT, int: INTEGER, float: FLOAT, bool: BOOLEAN, bytes: BYTES, datetime: TIMESTAMP,
                          tuple[str, ...]: TEXT_LIST}


@dataclasses.dataclass(frozen=True)
class Declared:
    """What `column()` declares about one column; a Table resolves it into a Column."""

    name: str
    kind: Kind | None
    stores: frozenset[str]
    constraint: str
    derived: bool


def column(name: str, kind: Kind | None = None, *, stores: frozenset[str] = BOTH, constraint: str = "",
           derived: bool = False) -> Declared:
    """What differs for one column from what its field's annotation gives: its kind, the stores that
    keep it, an SQLite constraint. A name that is no field of the dataclass needs a kind, and is either
    `derived` (the record's attribute of that name, a property, written with the row and never read
    back) or the adapter's own (its statements write and read it; here only for the DDL, nullable)."""
    return Declared(name, kind, stores, constraint, derived)


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a Table, resolved from its field and what column() declared."""

    name: str
    kind: Kind
    stores: frozenset[str] = BOTH
    constraint: str = ""  # appended to the SQLite definition: UNIQUE, CHECK (...)
    role: str = FIELD
    nullable: bool = False
    has_default: bool = False
    default: Any = None

    @property
    def on_null(self) -> Any:
        """What a NULL in this column reads as: the field's default, else its kind's empty value."""
        if self.kind.collection or not self.has_default:
            return self.kind.empty
        return self.default


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """(T, True) for `T | None`, (hint, False) for anything else."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        others = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(others) == 1:
            return others[0], True
    return hint, False


class Table:
    """A table named once with its dataclass and key; `sqlite` and `cassandra` are how each store keeps it."""

    def __init__(self, name: str, record: type, *, key: str | Sequence[str], columns: Iterable[Declared] = ()):
        self.name = name
        self.record = record
        self.key = (key,) if isinstance(key, str) else tuple(key)
        declared = {declared.name: declared for declared in columns}
        hints = typing.get_type_hints(record)
        resolved = [self._field(field, hints[field.name], declared.pop(field.name, None))
                    for field in dataclasses.fields(record)]
        for extra in declared.values():
            if extra.kind is None:
                raise TypeError(f"{name}.{extra.name} is no field of {record.__name__}: give its kind")
            role = DERIVED if extra.derived else OWN
            resolved.append(Column(extra.name, extra.kind, extra.stores, extra.constraint, role, nullable=role == OWN))
        self.columns = tuple(resolved)
        unknown_keys = set(self.key) - {c.name for c in self.columns if c.role == FIELD and c.stores == BOTH}
        if unknown_keys:
            raise TypeError(f"{name}: key {sorted(unknown_keys)} must be fields both stores keep")
        self.sqlite = SqliteTable(self)
        self.cassandra = CassandraTable(self)

    def _field(self, field: dataclasses.Field, hint: Any, declared: Declared | None) -> Column:
        hint, nullable = _unwrap_optional(hint)
        kind = declared.kind if declared and declared.kind else KINDS.get(hint)
        if kind is None:
            raise TypeError(f"{self.name}.{field.name}: no column kind for {hint!r}; give one with column()")
        has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        return Column(field.name, kind, declared.stores if declared else BOTH, declared.constraint if declared else "",
                      FIELD, nullable, has_default, default if has_default else None)


class StoredTable:
    """A Table as one store keeps it: its DDL, statement texts, parameters and rows. Subclasses say
    how their store writes a column's definition and the key, and reads a row's cell."""

    store = ""

    def __init__(self, table: Table):
        self.table = table
        self.name = table.name
        self.key = table.key
        self._columns = {c.name: c for c in table.columns if self.store in c.stores}
        self._written = tuple(name for name, c in self._columns.items() if c.role != OWN)
        self.columns = ", ".join(self._written)  # what the generic insert writes and a select reads

    # texts ------------------------------------------------------------------------------------

    @property
    def ddl(self) -> str:
        """CREATE TABLE IF NOT EXISTS, every column of this store with the key."""
        definitions = ", ".join(self.definition(c) for c in self._columns.values())
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({definitions}, {self._primary_key()})"

    def insert(self, *, verb: str = "INSERT", suffix: str = "") -> str:
        """INSERT of every written column (parameters: `values(record)`); `verb` such as "INSERT OR
        IGNORE", `suffix` such as " IF NOT EXISTS" or " USING TTL ?"."""
        marks = ", ".join("?" for _ in self._written)
        return f"{verb} INTO {self.name} ({self.columns}) VALUES ({marks}){suffix}"

    def update(self, names: Sequence[str], *, suffix: str = "") -> str:
        """UPDATE of the named columns of one row by its key (parameters: `update_values(record, names)`)."""
        assignments = ", ".join(f"{name} = ?" for name in names)
        where = " AND ".join(f"{key} = ?" for key in self.key)
        return f"UPDATE {self.name} SET {assignments} WHERE {where}{suffix}"

    def settable(self, *, without: Sequence[str] = ()) -> tuple[str, ...]:
        """The fields this store keeps in the table that an update may write: all but the key and `without`."""
        return tuple(name for name, c in self._columns.items()
                     if c.role == FIELD and name not in self.key and name not in without)

    # values -----------------------------------------------------------------------------------

    def values(self, record: Any, names: Sequence[str] | None = None) -> tuple:
        """The record's values of the named columns (default: every written column), converted for the store."""
        converted = []
        for name in self._written if names is None else names:
            value = getattr(record, name)
            converted.append(None if value is None else self._columns[name].kind.to_store(self.store)(value))
        return tuple(converted)

    def update_values(self, record: Any, names: Sequence[str]) -> tuple:
        """The parameters of `update(names)`: the named values, then the key's."""
        return self.values(record, names) + self.values(record, self.key)

    def row(self, row: Any, **given: Any) -> Any:
        """The record a row holds; `given` supplies the fields this store keeps elsewhere."""
        fields = {}
        for name, c in self._columns.items():
            if c.role == FIELD:
                cell = self._cell(row, name)
                fields[name] = c.on_null if cell is None else c.kind.from_store(self.store)(cell)
        return self.table.record(**fields, **given)

    # schema evolution -------------------------------------------------------------------------

    def columns_to_add(self, present: Iterable[str]) -> list[str]:
        """Definitions of the columns an existing table (whose columns are `present`) lacks: the schema
        rule of the module's docstring. ValueError for one that cannot be added."""
        have = set(present)
        missing = [c for name, c in self._columns.items() if name not in have]
        for c in missing:
            if c.name in self.key or not (c.has_default or c.nullable):
                raise ValueError(f"column {self.name}.{c.name} cannot be added to an existing table: "
                                 "it is a key, or its field has no default for the rows written before")
        return [self.definition(c) for c in missing]

    # what differs between stores ----------------------------------------------------------------

    def definition(self, c: Column) -> str:
        raise NotImplementedError

    def _primary_key(self) -> str:
        raise NotImplementedError

    def _cell(self, row: Any, name: str) -> Any:
        raise NotImplementedError


def _sqlite_literal(value: Any) -> str:
    """A value stored for SQLite, as a literal of its DDL."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"no SQLite literal for {value!r}")


class SqliteTable(StoredTable):
    """Columns NOT NULL unless their field is optional, with the field's default as DEFAULT; rows are sqlite3.Row."""

    store = SQLITE

    def definition(self, c: Column) -> str:
        text = f"{c.name} {c.kind.sqlite}" + ("" if c.nullable else " NOT NULL")
        if c.has_default and c.on_null is not None:
            text += f" DEFAULT {_sqlite_literal(c.kind.to_sqlite(c.on_null))}"
        return f"{text} {c.constraint}" if c.constraint else text

    def _primary_key(self) -> str:
        return f"PRIMARY KEY ({', '.join(self.key)})"

    def _cell(self, row: Any, name: str) -> Any:
        return row[name]


class CassandraTable(StoredTable):
    """Columns typed only (CQL has no NOT NULL or DEFAULT); the key is the partition key; rows are named tuples."""

    store = CASSANDRA

    def definition(self, c: Column) -> str:
        return f"{c.name} {c.kind.cql}"

    def _primary_key(self) -> str:
        partition = self.key[0] if len(self.key) == 1 else f"({', '.join(self.key)})"
        return f"PRIMARY KEY ({partition})"

    def _cell(self, row: Any, name: str) -> Any:
        return getattr(row, name)
