"""Opening a service's store from its settings: the embedded SQLite file, or its Cassandra keyspace.

    # services/x/store/__init__.py
    open_store: Callable[[ServerSettings], XStore] = stores.opener(
        embedded="services.x.store.sqlite:SqliteXStore", cassandra="services.x.store.cassandra:CassandraXStore")
    store = open_store(settings)                # STORE=embedded|cassandra picks one

Adapters are imported by name, so a process only loads the driver it uses. Each adapter class is
a runtime.sqlite.SqliteStore or runtime.cassandra.CassandraStore, so both open the same way, and
both raise StoreUnavailable when their driver says the store did not answer: no layer above the
adapters knows a driver's exceptions.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from runtime.settings import ServerSettings


def open_store(settings: ServerSettings, adapters: Mapping[str, str]):
    """The adapter for settings.store ("module:Class" by store name), connected, its schema applied."""
    module, _, name = adapters[settings.store].partition(":")
    adapter = getattr(importlib.import_module(module), name)
    if settings.store == "cassandra":
        return adapter.connect(settings.cassandra)
    return adapter.open(settings.sqlite_path)


def opener(*, embedded: str, cassandra: str) -> Callable[[ServerSettings], Any]:
    """A service's open_store, its adapters named ("module:Class"); the service types it as its port."""
    adapters = {"embedded": embedded, "cassandra": cassandra}

    def open_port(settings: ServerSettings):
        """The adapter named by the settings (STORE=embedded|cassandra), connected, its schema applied."""
        return open_store(settings, adapters)

    return open_port


class StoreUnavailable(Exception):
    """The store did not answer (a node down, a timeout, a locked or failing disk): an outage, not a
    bug and not the caller's fault; a client may retry later."""


def outages_become_unavailable(cls: type, outages: tuple[type[Exception], ...]) -> None:
    """Makes each public method `cls` defines raise StoreUnavailable for its driver's `outages` (the
    driver's error is kept as the cause, for the log)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _translating(member, outages))


def _translating(method: Callable, outages: tuple[type[Exception], ...]) -> Callable:
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except outages as outage:
            raise StoreUnavailable(f"{type(outage).__name__}: {outage}") from outage

    return wrapper
