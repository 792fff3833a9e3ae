"""Open a store adapter by name, so one contract test module runs the same cases on both."""

from __future__ import annotations

import importlib

import pytest

ADAPTERS = ["sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)]


def open_adapter(request, tmp_path, service: str, sqlite_class: str, cassandra_class: str):
    """The adapter named by request.param: SQLite in tmp_path, or Cassandra in a fresh keyspace."""
    if request.param == "sqlite":
        module = importlib.import_module(f"services.{service}.store.sqlite")
        return getattr(module, sqlite_class).open(str(tmp_path / f"{service}.sqlite3"))
    module = importlib.import_module(f"services.{service}.store.cassandra")
    return getattr(module, cassandra_class).connect(request.getfixturevalue("cassandra_settings")())
