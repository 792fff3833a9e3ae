"""Layers do not leak: what a process imports is what its settings use, and a driver's errors stay in
its adapter (runtime/stores.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from harness.servers import ROOT
from runtime.sqlite import SqliteStore
from runtime.stores import StoreUnavailable


@pytest.mark.parametrize("service", ["accounts", "catalog", "orders"])
def test_a_service_on_the_embedded_store_never_loads_the_cassandra_driver(service):
    probe = (f"import sys; import services.{service}.server, services.{service}.servicer, runtime.errors; "
             f"from services.{service}.store import sqlite; "
             "loaded = sorted(m for m in sys.modules if m == 'cassandra' or m.startswith('cassandra.')); "
             "print(loaded); sys.exit(1 if loaded else 0)")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


class _FlakyDisk(SqliteStore):
    def read(self) -> None:
        raise sqlite3.OperationalError("disk I/O error")  # what the driver raises when the disk fails

    def refuse(self) -> None:
        raise sqlite3.IntegrityError("UNIQUE constraint failed")  # not an outage: stays as it is


def test_an_adapter_raises_store_unavailable_for_its_drivers_outages_and_nothing_else():
    store = _FlakyDisk.open(":memory:")
    try:
        with pytest.raises(StoreUnavailable) as unavailable:
            store.read()
        assert isinstance(unavailable.value.__cause__, sqlite3.OperationalError)
        with pytest.raises(sqlite3.IntegrityError):
            store.refuse()
    finally:
        store.close()


def test_the_harness_and_the_benchmarks_import_nothing_from_the_tests():
    import ast

    leaks = []
    for folder in ("harness", "bench", "tools", "runtime", "edge", "services", "observability"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                    [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
                leaks += [f"{path.relative_to(ROOT)}: {name}" for name in names if name == "tests" or name.startswith("tests.")]
    assert leaks == []
