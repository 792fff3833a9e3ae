"""Storage port of the accounts service and its two adapters (embedded SQLite, Cassandra)."""

from collections.abc import Callable

from runtime import stores
from runtime.settings import ServerSettings
from services.accounts.store.base import AccountStore, DuplicateKey

__all__ = ["AccountStore", "DuplicateKey", "open_store"]

open_store: Callable[[ServerSettings], AccountStore] = stores.opener(
    embedded="services.accounts.store.sqlite:SqliteAccountStore",
    cassandra="services.accounts.store.cassandra:CassandraAccountStore")
