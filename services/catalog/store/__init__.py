"""Storage port of the catalog service and its adapters (embedded SQLite, Cassandra)."""

from services.catalog.store.base import CatalogStore

__all__ = ["CatalogStore", "open_store"]


def open_store(settings) -> CatalogStore:
    if settings.store == "cassandra":
        from services.catalog.store.cassandra import CassandraCatalogStore

        return CassandraCatalogStore.connect(settings.cassandra)
    from services.catalog.store.sqlite import SqliteCatalogStore

    return SqliteCatalogStore.open(settings.sqlite_path)
