"""Session-wide fixtures: one real Cassandra for every test that needs it, and one test PKI.

Set CASSANDRA_CONTACT_POINTS to use a running cluster; otherwise the first test that asks starts
Apache Cassandra (the version pinned in tools/cassandra/pom.xml) and the session stops it at the end.
"""

from __future__ import annotations

import os
import uuid

import pytest

from runtime.settings import CassandraSettings


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory):
    """A test PKI (CA, a certificate per workload, and the bad ones) written once for the session."""
    from harness import servers

    return servers.write_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def cassandra_contact_point():
    """(contact point, protocol version) of the Cassandra the tests use."""
    configured = os.environ.get("CASSANDRA_CONTACT_POINTS")
    if configured:
        version = os.environ.get("CASSANDRA_PROTOCOL_VERSION")
        yield configured, int(version) if version else None
        return
    from tools.cassandra.launcher import CassandraServer

    with CassandraServer() as server:
        yield server.contact_point, None


def _test_settings(contact_point: str, protocol_version: int | None, keyspace: str) -> CassandraSettings:
    return CassandraSettings(contact_points=tuple(contact_point.split(",")), keyspace=keyspace,
                             protocol_version=protocol_version, consistency="local_quorum",
                             serial_consistency="serial", local_dc=None, replication_factor=1)


@pytest.fixture(scope="session")
def cassandra_settings(cassandra_contact_point):
    """Factory of CassandraSettings, each call with a fresh keyspace `t_<hex>`."""
    contact_point, protocol_version = cassandra_contact_point
    created: list[str] = []

    def make() -> CassandraSettings:
        created.append(f"t_{uuid.uuid4().hex[:16]}")
        return _test_settings(contact_point, protocol_version, created[-1])

    yield make
    # A Cassandra started here is thrown away with its files; only a cluster we were pointed
    # at outlives the session, so only there are the keyspaces worth dropping.
    if created and os.environ.get("CASSANDRA_CONTACT_POINTS"):
        from runtime.cassandra import connect

        session = connect(_test_settings(contact_point, protocol_version, "system"))
        for keyspace in created:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        session.cluster.shutdown()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """accounts and the edge (gunicorn) as real processes over real mTLS, for end-to-end tests."""
    from harness.servers import write_test_pki
    from harness.stack import Stack

    running = Stack(write_test_pki(tmp_path_factory.mktemp("stack-pki")), tmp_path_factory.mktemp("stack-data"))
    yield running
    running.stop()
