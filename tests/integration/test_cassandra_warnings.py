"""What Cassandra warns of with a result reaches the service's log (the driver keeps it to itself),
once a minute at most for warnings alike but for their numbers, on a real Cassandra."""

from __future__ import annotations

import logging

import pytest
from cassandra.query import BatchStatement, BatchType

from runtime import cassandra as cql

pytestmark = pytest.mark.cassandra

TOMBSTONES = 1200  # past tombstone_warn_threshold (1000)


_SCHEMA = ["CREATE TABLE IF NOT EXISTS deleted (bucket int, seq int, PRIMARY KEY (bucket, seq))"]
_STATEMENTS = {"read": cql.read("SELECT seq FROM deleted WHERE bucket = ? LIMIT 10"),
               "delete": cql.write("DELETE FROM deleted WHERE bucket = ? AND seq = ?")}


class Deleted(cql.CassandraStore):
    """Partitions of deleted rows: a read of one goes through every tombstone in it."""

    SCHEMA = _SCHEMA
    STATEMENTS = _STATEMENTS

    def fill(self, bucket: int, tombstones: int) -> None:
        for first in range(0, tombstones, 200):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for seq in range(first, min(first + 200, tombstones)):
                batch.add(self._q["delete"], (bucket, seq))
            self._session.execute(batch, timeout=30)

    def read(self, bucket: int) -> list:
        return list(self._run("read", bucket))


@pytest.fixture
def store(cassandra_settings, monkeypatch):
    monkeypatch.setattr("runtime.cassandra._warned", {})
    opened = Deleted.connect(cassandra_settings())
    yield opened
    opened.close()


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "runtime.cassandra" and r.levelno == logging.WARNING]


def test_a_warning_from_cassandra_is_logged_once_a_minute(store, caplog):
    caplog.set_level(logging.WARNING, logger="runtime.cassandra")
    store.fill(1, TOMBSTONES)
    store.fill(2, TOMBSTONES + 1)
    assert warnings(caplog) == []  # writing them is not what Cassandra warns of

    assert store.read(1) == []
    [logged] = warnings(caplog)
    assert logged.startswith("Cassandra warns: ") and f"{TOMBSTONES} tombstone" in logged and "deleted" in logged

    assert store.read(1) == [] and store.read(2) == []  # the same again, and one alike but for its numbers
    assert warnings(caplog) == [logged]
