"""Opening a service's store from its settings: the embedded SQLite file, or its Cassandra keyspace.

    ADAPTERS = {"embedded": "services.x.store.sqlite:SqliteXStore",
                "cassandra": "services.x.store.cassandra:CassandraXStore"}
    store = open_store(settings, ADAPTERS)      # STORE=embedded|cassandra picks one

Adapters are imported by name, so a process only loads the driver it uses. Each adapter class is
a runtime.sqlite.SqliteStore or runtime.cassandra.CassandraStore, so both open the same way.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from runtime.settings import ServerSettings


def open_store(settings: ServerSettings, adapters: Mapping[str, str]):
    """The adapter for settings.store, connected, its schema applied."""
    module, _, name = adapters[settings.store].partition(":")
    adapter = getattr(importlib.import_module(module), name)
    if settings.store == "cassandra":
        return adapter.connect(settings.cassandra)
    return adapter.open(settings.sqlite_path)
