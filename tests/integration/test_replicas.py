"""Replicas behind one DNS name, over real mTLS: callers find a replica added later without a restart,
and the connection churn that makes that possible costs no call."""

from __future__ import annotations

import time

import pytest

from harness import servers
from harness.dns import DnsServer
from runtime.calls import CallContext
from runtime.clients import ServiceClients
from runtime.settings import ServerSettings, TlsFiles
from tests.support.bad_tokens import new_issuer_key
from tests.support.echo_service import EchoServer, compile_echo_proto

SERVICE = "edgetest.v1.EchoService"


@pytest.fixture(scope="module")
def echo_pb2(tmp_path_factory):
    return compile_echo_proto(tmp_path_factory.mktemp("echo-gen"))


def _replica(echo_pb2, pki_dir, tmp_path, host: str, port: int) -> EchoServer:
    # The replicas present the catalog certificate: its SAN is the name the callers dial ("catalog").
    env = servers.service_env("echo", pki_dir, tmp_path, GRPC_HOST=host, GRPC_PORT=str(port),
                              TLS_CERT_FILE=str(pki_dir / "catalog.pem"), TLS_KEY_FILE=str(pki_dir / "catalog.key"),
                              GRPC_MAX_CONNECTION_AGE_SECONDS="1")
    replica = EchoServer(echo_pb2, ServerSettings.from_env("echo", 0, env), new_issuer_key())
    replica.server.start()
    return replica


def test_a_replica_added_behind_the_name_gets_traffic_without_restarting_the_caller(echo_pb2, pki_dir, tmp_path):
    first = _replica(echo_pb2, pki_dir, tmp_path, "127.0.0.1", 0)
    second = _replica(echo_pb2, pki_dir, tmp_path, "127.0.0.2", first.port)  # same port, another address
    tls = TlsFiles(pki_dir / "ca.pem", pki_dir / "edge.pem", pki_dir / "edge.key")
    method = echo_pb2.DESCRIPTOR.services_by_name["EchoService"].methods_by_name["GetThing"]
    try:
        with DnsServer({"catalog": ["127.0.0.1"]}) as dns:
            clients = ServiceClients(tls, {SERVICE: dns.target("catalog", first.port)})
            try:
                for _ in range(20):
                    clients.call(method, echo_pb2.Thing(id="before"), CallContext.starting_now(5))
                assert len(first.calls) == 20 and second.calls == []
                dns.records["catalog"] = ["127.0.0.1", "127.0.0.2"]  # scaled out
                deadline, made = time.monotonic() + 20, 0
                while not second.calls and time.monotonic() < deadline:
                    # Every call must succeed while connections are recycled under it.
                    clients.call(method, echo_pb2.Thing(id="after"), CallContext.starting_now(5))
                    made += 1
                    time.sleep(0.02)
                assert second.calls, f"the new replica got no call in 20 s ({made} calls, {dns.queries} DNS queries)"
                for _ in range(20):
                    clients.call(method, echo_pb2.Thing(id="spread"), CallContext.starting_now(5))
                assert second.calls.count("GetThing") >= 5, "round robin spreads calls over both replicas"
            finally:
                clients.close()
    finally:
        for replica in (first, second):
            replica.server.stop(0).wait(10)


def test_a_call_still_running_when_its_connection_reaches_its_age_is_not_cut(echo_pb2, pki_dir, tmp_path):
    """Connections end at their maximum age so callers re-resolve names; a call still running then
    must finish (an order it places must not become an UNAVAILABLE that says nothing happened),
    whatever the service's shutdown grace."""
    env = servers.service_env("echo", pki_dir, tmp_path, TLS_CERT_FILE=str(pki_dir / "catalog.pem"),
                              TLS_KEY_FILE=str(pki_dir / "catalog.key"), GRPC_MAX_CONNECTION_AGE_SECONDS="1",
                              SHUTDOWN_GRACE_SECONDS="1")
    replica = EchoServer(echo_pb2, ServerSettings.from_env("echo", 0, env), new_issuer_key())
    replica.server.start()
    tls = TlsFiles(pki_dir / "ca.pem", pki_dir / "edge.pem", pki_dir / "edge.key")
    method = echo_pb2.DESCRIPTOR.services_by_name["EchoService"].methods_by_name["GetThing"]
    clients = ServiceClients(tls, {SERVICE: f"127.0.0.1:{replica.port}"})
    try:
        # Four seconds: past the connection's age (1 s, with jitter) and the shutdown grace (1 s) together.
        answer = clients.call(method, echo_pb2.Thing(name="sleep:4"), CallContext.starting_now(8))
        assert answer.name == "sleep:4"
    finally:
        clients.close()
        replica.server.stop(0).wait(10)
