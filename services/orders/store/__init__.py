"""Storage port of the orders service and its adapters (embedded SQLite, Cassandra)."""

from runtime import stores
from services.orders.store.base import OrderStore

__all__ = ["OrderStore", "open_store"]

ADAPTERS = {
    "embedded": "services.orders.store.sqlite:SqliteOrderStore",
    "cassandra": "services.orders.store.cassandra:CassandraOrderStore",
}


def open_store(settings) -> OrderStore:
    """The adapter named by the settings (STORE=embedded|cassandra), schema applied."""
    return stores.open_store(settings, ADAPTERS)
