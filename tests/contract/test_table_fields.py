"""A field added to a table's dataclass, and nothing else, is stored, read, masked and migrated on both
stores (runtime/tables.py, services/common/masks.py), and files written before the table specs read
as they did."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from datetime import datetime

import pytest

from runtime import cassandra as cql
from runtime.sqlite import SqliteStore, from_ms
from runtime.tables import Table
from services.catalog.domain import Product, utcnow
from services.catalog.store.sqlite import SqliteCatalogStore
from services.common.errors import InvalidArgument
from services.common.masks import apply_mask
from tests.support.stores import ADAPTERS


@dataclasses.dataclass
class Gadget:
    id: str
    name: str
    made_at: datetime
    tags: tuple[str, ...] = ()
    weight: int = 0
    retired_at: datetime | None = None


@dataclasses.dataclass
class ColouredGadget(Gadget):
    """The same record one release later: a field added, with its default for the gadgets made before."""

    colour: str = "grey"


@dataclasses.dataclass
class SerialGadget(Gadget):
    serial: str = dataclasses.field(kw_only=True)  # no default: no value for the gadgets made before


GADGETS = Table("gadgets", Gadget, key="id")
COLOURED_GADGETS = Table("gadgets", ColouredGadget, key="id")
GADGET_FIELDS = ("name", "tags", "weight", "colour")  # what a caller may change


def _sqlite_store(table: Table):
    """An SQLite adapter of one table, as a service's would use its spec."""
    spec = table.sqlite

    class Gadgets(SqliteStore):
        TABLES = (table,)

        def put(self, gadget) -> None:
            self._db.execute(spec.insert(), spec.values(gadget))

        def get(self, gadget_id: str):
            rows = self._db.query(f"SELECT {spec.columns} FROM gadgets WHERE id = ?", (gadget_id,))
            return spec.row(rows[0]) if rows else None

        def save(self, gadget) -> None:
            self._db.execute(spec.update(spec.settable()), spec.update_values(gadget, spec.settable()))

        def column_names(self) -> set[str]:
            return {row["name"] for row in self._db.query("PRAGMA table_info(gadgets)")}

    return Gadgets


def _cassandra_store(table: Table):
    """A Cassandra adapter of one table, its statements declared from the spec."""
    spec = table.cassandra
    statements = {"put": cql.write(spec.insert()),
                  "get": cql.read(f"SELECT {spec.columns} FROM gadgets WHERE id = ?"),
                  "save": cql.write(spec.update(spec.settable()))}

    class Gadgets(cql.CassandraStore):
        TABLES = (table,)
        STATEMENTS = statements

        def put(self, gadget) -> None:
            self._run("put", *spec.values(gadget))

        def get(self, gadget_id: str):
            row = self._run("get", gadget_id).one()
            return spec.row(row) if row else None

        def save(self, gadget) -> None:
            self._run("save", *spec.update_values(gadget, spec.settable()))

        def column_names(self) -> set[str]:
            self._session.cluster.refresh_table_metadata(self._keyspace, "gadgets")
            return set(self._session.cluster.metadata.keyspaces[self._keyspace].tables["gadgets"].columns)

    return Gadgets


@pytest.fixture(params=ADAPTERS)
def open_gadgets(request, tmp_path):
    """open_gadgets(table): that table's adapter on the test's store (the same file or keyspace each time)."""
    opened = []
    if request.param == "sqlite":
        path = str(tmp_path / "gadgets.sqlite3")

        def open_sqlite(table: Table):
            opened.append(_sqlite_store(table).open(path))
            return opened[-1]
        yield open_sqlite
    else:
        settings = request.getfixturevalue("cassandra_settings")()

        def open_cassandra(table: Table):
            opened.append(_cassandra_store(table).connect(settings))
            return opened[-1]
        yield open_cassandra
    for store in opened:
        store.close()


def test_a_field_added_to_the_dataclass_is_migrated_stored_read_and_masked(open_gadgets):
    before = open_gadgets(GADGETS)
    lamp = Gadget(id=str(uuid.uuid4()), name="lamp", made_at=utcnow(), tags=("desk", "light"), weight=3)
    before.put(lamp)
    assert before.get(lamp.id) == lamp
    before.close()

    after = open_gadgets(COLOURED_GADGETS)  # the existing table gains the column at start
    assert "colour" in after.column_names()
    assert after.get(lamp.id) == ColouredGadget(**dataclasses.asdict(lamp), colour="grey")  # made before: the default
    kettle = ColouredGadget(id=str(uuid.uuid4()), name="kettle", made_at=utcnow(), retired_at=utcnow(), colour="red")
    after.put(kettle)
    assert after.get(kettle.id) == kettle

    repainted = apply_mask(kettle, {"name": "not this", "weight": 9, "colour": "blue"}, ["colour"], GADGET_FIELDS, "gadget")
    after.save(repainted)
    assert after.get(kettle.id) == dataclasses.replace(kettle, colour="blue")
    after.close()
    assert open_gadgets(COLOURED_GADGETS).get(kettle.id).colour == "blue"  # opening again adds nothing


def test_a_field_without_a_default_cannot_be_added_to_an_existing_table():
    serials = Table("gadgets", SerialGadget, key="id")
    existing = [field.name for field in dataclasses.fields(Gadget)]
    for spec in (serials.sqlite, serials.cassandra):
        with pytest.raises(ValueError, match=r"gadgets\.serial cannot be added"):
            spec.columns_to_add(existing)
        assert spec.columns_to_add([*existing, "serial"]) == []


def test_both_stores_keep_a_defaulted_column_alike_and_sqlite_keeps_the_default_in_its_ddl():
    assert COLOURED_GADGETS.sqlite.columns_to_add(["id", "name", "made_at", "tags", "weight", "retired_at"]) == [
        "colour TEXT NOT NULL DEFAULT 'grey'"]
    assert COLOURED_GADGETS.cassandra.columns_to_add(["id", "name", "made_at", "tags", "weight", "retired_at"]) == [
        "colour text"]
    assert GADGETS.sqlite.ddl == (
        "CREATE TABLE IF NOT EXISTS gadgets (id TEXT NOT NULL, name TEXT NOT NULL, made_at INTEGER NOT NULL, "
        "tags TEXT NOT NULL DEFAULT '[]', weight INTEGER NOT NULL DEFAULT 0, retired_at INTEGER, PRIMARY KEY (id))")
    assert GADGETS.cassandra.ddl == (
        "CREATE TABLE IF NOT EXISTS gadgets (id text, name text, made_at timestamp, tags list<text>, weight bigint, "
        "retired_at timestamp, PRIMARY KEY (id))")


def test_a_message_field_in_a_mask_is_replaced_whole_and_a_missing_part_is_refused():
    mug = Product(id="p1", name="Mug", description="", currency="EUR", price_minor=1250, created_at=utcnow(),
                  updated_at=utcnow())
    repriced = apply_mask(mug, {"price": {"currency": "USD", "price_minor": 0}}, ["price"], ("name", "price"), "product")
    assert (repriced.currency, repriced.price_minor, repriced.name) == ("USD", 0, "Mug")
    with pytest.raises(InvalidArgument) as refused:
        apply_mask(mug, {"price": {"currency": "", "price_minor": 5}}, ["price"], ("name", "price"), "product")
    assert [path for path, _ in refused.value.violations] == ["product.price"]


def test_a_catalog_file_written_before_the_table_specs_reads_as_it_did(tmp_path):
    """SQLite only: the columns of a file made by the hand-written DDL, in its order, keep their names
    and types; the spec reads and writes them by name."""
    path = str(tmp_path / "catalog.sqlite3")
    with sqlite3.connect(path) as old:
        old.execute("""CREATE TABLE products (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, currency TEXT NOT NULL,
            price_minor INTEGER NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            stock INTEGER NOT NULL CHECK (stock >= 0))""")
        old.execute("INSERT INTO products VALUES ('p1', 'Mug', 'Blue', 'EUR', 1250, 'AVAILABLE', 1700000000123, "
                    "1700000000456, 7)")
    store = SqliteCatalogStore.open(path)
    try:
        mug = store.get_product("p1")
        assert (mug.name, mug.description, mug.currency, mug.price_minor, mug.state, mug.stock) == (
            "Mug", "Blue", "EUR", 1250, "AVAILABLE", 7)
        assert (mug.created_at, mug.updated_at) == (from_ms(1700000000123), from_ms(1700000000456))
        store.save_product(dataclasses.replace(mug, name="Big mug"))
        assert store.get_product("p1") == dataclasses.replace(mug, name="Big mug")
    finally:
        store.close()
