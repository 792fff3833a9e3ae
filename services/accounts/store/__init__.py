"""Storage port of the accounts service and its two adapters (embedded SQLite, Cassandra)."""

from services.accounts.store.base import AccountStore, DuplicateKey

__all__ = ["AccountStore", "DuplicateKey", "open_store"]


def open_store(settings) -> AccountStore:
    """The adapter named by the settings (STORE=embedded|cassandra), schema applied."""
    if settings.store == "cassandra":
        from services.accounts.store.cassandra import CassandraAccountStore

        return CassandraAccountStore.connect(settings.cassandra)
    from services.accounts.store.sqlite import SqliteAccountStore

    return SqliteAccountStore.open(settings.sqlite_path)
