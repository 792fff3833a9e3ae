"""Storage port of the orders service and its adapters (embedded SQLite, Cassandra)."""

from collections.abc import Callable

from runtime import stores
from runtime.settings import ServerSettings
from services.orders.store.base import OrderStore

__all__ = ["OrderStore", "open_store"]

open_store: Callable[[ServerSettings], OrderStore] = stores.opener(
    embedded="services.orders.store.sqlite:SqliteOrderStore",
    cassandra="services.orders.store.cassandra:CassandraOrderStore")
