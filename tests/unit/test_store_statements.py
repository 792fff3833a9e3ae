"""Store statements, read once when a store starts: every Cassandra statement of every store names
its table with the keyspace, and every statement's span is named for its operation and table."""

from __future__ import annotations

import pytest

from observability import store as spans
from runtime.cassandra import qualified
from services.accounts.store.cassandra import CassandraAccountStore
from services.catalog.store.cassandra import CassandraCatalogStore
from services.orders.store.cassandra import CassandraOrderStore

STORES = (CassandraAccountStore, CassandraCatalogStore, CassandraOrderStore)


@pytest.mark.parametrize("store", STORES, ids=lambda s: s.__name__)
def test_every_cassandra_statement_and_table_of_a_store_names_its_keyspace(store):
    tables = [table.cassandra.ddl for table in store.TABLES]
    for text in [*tables, *store.SCHEMA, *(statement.text for statement in store.STATEMENTS.values())]:
        named = qualified(text, "shop_ks")
        assert named.count("shop_ks.") == 1, named
        table = spans.describe(spans.CASSANDRA, "shop_ks", named).attributes["db.collection.name"]
        assert f"shop_ks.{table}" in named


def test_a_statement_already_qualified_is_left_as_it_is_and_one_without_a_table_is_refused():
    assert qualified("SELECT release_version FROM system.local", "shop_ks") == "SELECT release_version FROM system.local"
    with pytest.raises(ValueError, match="no table"):
        qualified("SELECT now() FROM", "shop_ks")


@pytest.mark.parametrize(("text", "name"), [
    ("SELECT id FROM shop_ks.products WHERE id = ?", "SELECT products"),
    ("DELETE holds[?] FROM stock WHERE product_id = ?", "DELETE stock"),
    ("UPDATE stock USING TTL 60 SET holds[?] = ? WHERE product_id = ?", "UPDATE stock"),
    ("INSERT OR IGNORE INTO unsettled_orders SELECT id, created_at FROM orders WHERE id = ?", "INSERT unsettled_orders"),
    ("BEGIN IMMEDIATE", "BEGIN shop.sqlite3"),
    ("PRAGMA table_info(accounts)", "PRAGMA shop.sqlite3"),
])
def test_a_span_is_named_for_the_operation_and_the_first_table_or_else_the_namespace(text, name):
    assert spans.describe(spans.SQLITE, "shop.sqlite3", text).name == name


def test_a_batch_is_named_for_what_its_statements_share():
    same = ("UPDATE stock SET quantity = ? WHERE product_id = ? IF quantity = ?", "UPDATE stock SET holds[?] = ? WHERE product_id = ?")
    mixed = (same[0], "DELETE holds[?] FROM stock WHERE product_id = ?")
    assert spans.describe_batch(spans.CASSANDRA, "ks", same).name == "BATCH UPDATE stock"
    described = spans.describe_batch(spans.CASSANDRA, "ks", mixed)
    assert (described.name, described.conditional) == ("BATCH stock", True)
    assert described.attributes["db.query.text"] == "; ".join(mixed)
    assert described.attributes["db.operation.batch.size"] == 2
    assert spans.describe_batch(spans.CASSANDRA, "ks", same[:1]) == spans.describe(spans.CASSANDRA, "ks", same[0])
