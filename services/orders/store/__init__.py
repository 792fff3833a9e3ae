"""Storage port of the orders service and its adapters (embedded SQLite, Cassandra)."""

from services.orders.store.base import OrderStore

__all__ = ["OrderStore", "open_store"]


def open_store(settings) -> OrderStore:
    if settings.store == "cassandra":
        from services.orders.store.cassandra import CassandraOrderStore

        return CassandraOrderStore.connect(settings.cassandra)
    from services.orders.store.sqlite import SqliteOrderStore

    return SqliteOrderStore.open(settings.sqlite_path)
