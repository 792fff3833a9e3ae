"""Storage port of the catalog service and its adapters (embedded SQLite, Cassandra)."""

from collections.abc import Callable

from runtime import stores
from runtime.settings import ServerSettings
from services.catalog.store.base import CatalogStore

__all__ = ["CatalogStore", "open_store"]

open_store: Callable[[ServerSettings], CatalogStore] = stores.opener(
    embedded="services.catalog.store.sqlite:SqliteCatalogStore",
    cassandra="services.catalog.store.cassandra:CassandraCatalogStore")
