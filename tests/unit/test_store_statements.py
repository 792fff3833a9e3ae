"""Store statements, read once when a store starts: every Cassandra statement of every store names
its table with the keyspace."""

from __future__ import annotations

import pytest

from runtime.cassandra import qualified
from services.accounts.store.cassandra import CassandraAccountStore
from services.catalog.store.cassandra import CassandraCatalogStore
from services.orders.store.cassandra import CassandraOrderStore

STORES = (CassandraAccountStore, CassandraCatalogStore, CassandraOrderStore)


@pytest.mark.parametrize("store", STORES, ids=lambda s: s.__name__)
def test_every_cassandra_statement_and_table_of_a_store_names_its_keyspace(store):
    for text in [*store.SCHEMA, *store.STATEMENTS.values()]:
        named = qualified(text, "shop_ks")
        assert named.count("shop_ks.") == 1, named


def test_a_statement_already_qualified_is_left_as_it_is_and_one_without_a_table_is_refused():
    assert qualified("SELECT release_version FROM system.local", "shop_ks") == "SELECT release_version FROM system.local"
    with pytest.raises(ValueError, match="no table"):
        qualified("SELECT now() FROM", "shop_ks")
