"""Session-wide fixtures: one real Cassandra for every test that needs it.

Set CASSANDRA_CONTACT_POINTS (and CASSANDRA_PROTOCOL_VERSION=3 for 2.1) to use a running
cluster; otherwise the first test that asks starts Cassandra 2.1 from the npm package and
the session stops it at the end.
"""

from __future__ import annotations

import os
import uuid

import pytest

from runtime.settings import CassandraSettings


@pytest.fixture(scope="session")
def cassandra_contact_point():
    """(contact point, protocol version) of the Cassandra the tests use."""
    configured = os.environ.get("CASSANDRA_CONTACT_POINTS")
    if configured:
        version = os.environ.get("CASSANDRA_PROTOCOL_VERSION")
        yield configured, int(version) if version else None
        return
    from tests.support.cassandra_server import CassandraServer

    with CassandraServer() as server:
        yield server.contact_point, 3


@pytest.fixture(scope="session")
def cassandra_settings(cassandra_contact_point):
    """Factory of CassandraSettings, each with a fresh keyspace (dropped at the end of the session)."""
    contact_point, protocol_version = cassandra_contact_point
    created = []

    def make() -> CassandraSettings:
        created.append(f"t_{uuid.uuid4().hex[:16]}")
        return CassandraSettings(contact_points=tuple(contact_point.split(",")), keyspace=created[-1],
                                 protocol_version=protocol_version, consistency="local_quorum",
                                 serial_consistency="serial", local_dc=None, replication_factor=1)

    yield make
    if created and os.environ.get("CASSANDRA_CONTACT_POINTS"):
        # Only a cluster we did not start outlives the session; leave it as we found it.
        from runtime.cassandra import connect

        session = connect(make())
        for keyspace in created[:-1]:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
        session.cluster.shutdown()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """accounts and the edge (gunicorn) as real processes over real mTLS, for end-to-end tests."""
    from tests.support.servers import write_test_pki
    from tests.support.stack import Stack

    running = Stack(write_test_pki(tmp_path_factory.mktemp("stack-pki")), tmp_path_factory.mktemp("stack-data"))
    yield running
    running.stop()
