"""Storage port of the catalog service and its adapters (embedded SQLite, Cassandra)."""

from runtime import stores
from services.catalog.store.base import CatalogStore

__all__ = ["CatalogStore", "open_store"]

ADAPTERS = {
    "embedded": "services.catalog.store.sqlite:SqliteCatalogStore",
    "cassandra": "services.catalog.store.cassandra:CassandraCatalogStore",
}


def open_store(settings) -> CatalogStore:
    """The adapter named by the settings (STORE=embedded|cassandra), schema applied."""
    return stores.open_store(settings, ADAPTERS)
