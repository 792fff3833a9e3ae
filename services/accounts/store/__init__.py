"""Storage port of the accounts service and its two adapters (embedded SQLite, Cassandra)."""

from runtime import stores
from services.accounts.store.base import AccountStore, DuplicateKey

__all__ = ["AccountStore", "DuplicateKey", "open_store"]

ADAPTERS = {
    "embedded": "services.accounts.store.sqlite:SqliteAccountStore",
    "cassandra": "services.accounts.store.cassandra:CassandraAccountStore",
}


def open_store(settings) -> AccountStore:
    """The adapter named by the settings (STORE=embedded|cassandra), schema applied."""
    return stores.open_store(settings, ADAPTERS)
