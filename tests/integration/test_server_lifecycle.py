"""Runtime behaviour shared by every service: health, reflection, graceful shutdown, certificate rotation."""

import contextlib
import shutil
import sqlite3
import threading
import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from prometheus_client.parser import text_string_to_metric_families

from harness import servers
from runtime import pki
from services.accounts.server import AccountsSettings, create_server
from shop.accounts.v1 import accounts_pb2 as pb
from shop.accounts.v1 import accounts_pb2_grpc

SERVICE = "shop.accounts.v1.AccountsService"


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_lists_the_service_under_both_protocol_versions(pki_dir, accounts_port, version):
    with servers.channel(pki_dir, accounts_port, "operator") as ch:
        # v1 and v1alpha messages are wire-identical, so the v1alpha classes can speak both.
        call = ch.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        responses = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
    names = {s.name for s in responses[0].list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health", f"grpc.reflection.{version}.ServerReflection"} <= names


def _wait_for_calls_in_flight(metrics_port: int, method: str, timeout: float = 30) -> None:
    """Until the service's own in-flight gauge counts a call of `method` (read from its /metrics)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        if any(s.value >= 1 for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "grpc_server_in_flight" and s.labels.get("grpc_method") == method):
            return
        time.sleep(0.02)
    raise TimeoutError(f"no {method} call reached the service in {timeout} s")


def test_sigterm_reports_not_serving_finishes_in_flight_calls_and_exits_cleanly(pki_dir, tmp_path):
    # A costlier hash makes each registration take long enough to be in flight at SIGTERM. The grace is
    # far longer than eight hashes take on a loaded machine: what is pinned is that calls in flight
    # finish, not how fast (a 5 s grace once cut all eight off under CPU load).
    metrics_port = servers.free_port()
    env = servers.service_env("accounts", pki_dir, tmp_path, PASSWORD_SCRYPT_LOG2_N="16", SHUTDOWN_GRACE_SECONDS="60",
                              METRICS_PORT=str(metrics_port))
    service = servers.ServiceProcess("services.accounts", env)
    servers.wait_serving(pki_dir, service.port)
    results, statuses = [], []
    with servers.channel(pki_dir, service.port, "edge") as ch, servers.channel(pki_dir, service.port, "operator") as watch_ch:
        watch = health_pb2_grpc.HealthStub(watch_ch).Watch(health_pb2.HealthCheckRequest(), timeout=90)

        def follow_health():
            with contextlib.suppress(grpc.RpcError):  # the stream ends when the server goes away
                statuses.extend(r.status for r in watch)

        watcher = threading.Thread(target=follow_health, daemon=True)
        watcher.start()
        stub = accounts_pb2_grpc.AccountsServiceStub(ch)

        def register(i):
            try:
                results.append(stub.CreateAccount(pb.CreateAccountRequest(
                    username=f"inflight{i}", email=f"inflight{i}@example.com", password="correct horse battery"), timeout=90).username)
            except grpc.RpcError as error:
                results.append(error.code())

        callers = [threading.Thread(target=register, args=(i,)) for i in range(8)]
        for caller in callers:
            caller.start()
        _wait_for_calls_in_flight(metrics_port, "CreateAccount")  # however slow the machine is today
        exit_code = service.stop(timeout=90)
        for caller in callers:
            caller.join(90)
        watcher.join(5)
    assert exit_code == 0
    assert statuses[0] == health_pb2.HealthCheckResponse.SERVING
    assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
    completed = [r for r in results if isinstance(r, str)]
    assert completed, results
    # Nothing acknowledged was lost: every registration that got an answer is in the store.
    with sqlite3.connect(tmp_path / "accounts.sqlite3") as db:
        stored = {row[0] for row in db.execute("SELECT username FROM accounts")}
    assert set(completed) <= stored
    # The others were refused cleanly, never cut off half-way.
    assert all(r == grpc.StatusCode.UNAVAILABLE for r in results if not isinstance(r, str))


def test_rotated_certificate_is_served_without_restart(pki_dir, tmp_path):
    rotating = tmp_path / "pki"
    shutil.copytree(pki_dir, rotating)
    env = servers.service_env("accounts", rotating, tmp_path)
    with servers.in_process(create_server, AccountsSettings.from_env(env), rotating) as port:
        new_ca = pki.create_ca("Next CA")
        (tmp_path / "next-ca.pem").write_bytes(new_ca.cert_pem)
        client = pki.issue_certificate(new_ca, "edge", servers.TRUST_DOMAIN)
        for name, data in (("next-edge.pem", client.cert_pem), ("next-edge.key", client.key_pem)):
            (rotating / name).write_bytes(data)
        (rotating / "next-ca.pem").write_bytes(new_ca.cert_pem)

        def jwks_with_next_ca():
            with servers.channel(rotating, port, "next-edge", ca="next-ca") as ch:
                return accounts_pb2_grpc.AccountsServiceStub(ch).GetJwks(pb.GetJwksRequest(), timeout=5)

        with pytest.raises(grpc.RpcError):
            jwks_with_next_ca()  # the server still shows the old CA's certificate
        server_cert = pki.issue_certificate(new_ca, "accounts", servers.TRUST_DOMAIN)
        # Rotate: trust both CAs for clients during the overlap, serve the new certificate.
        (rotating / "ca.pem").write_bytes((pki_dir / "ca.pem").read_bytes() + new_ca.cert_pem)
        (rotating / "accounts.key").write_bytes(server_cert.key_pem)
        (rotating / "accounts.pem").write_bytes(server_cert.cert_pem)
        assert jwks_with_next_ca().keys


def test_the_plaintext_health_port_serves_health_and_nothing_else(pki_dir, tmp_path):
    env = servers.service_env("accounts", pki_dir, tmp_path, HEALTH_PORT="0")
    server, port = create_server(AccountsSettings.from_env(env))
    server.start()
    try:
        servers.wait_serving(pki_dir, port)
        with grpc.insecure_channel(f"127.0.0.1:{server.health_port}") as plain:
            reply = health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as refused:
                accounts_pb2_grpc.AccountsServiceStub(plain).GetJwks(pb.GetJwksRequest(), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with grpc.insecure_channel(f"127.0.0.1:{port}") as plain_to_mtls, pytest.raises(grpc.RpcError):
            health_pb2_grpc.HealthStub(plain_to_mtls).Check(health_pb2.HealthCheckRequest(), timeout=5)
    finally:
        server.stop(0).wait(10)


def test_health_is_not_serving_until_the_store_answers(pki_dir, tmp_path):
    from runtime.server import ServiceServer

    store_up = threading.Event()

    def ping():
        if not store_up.is_set():
            raise ConnectionError("store not reachable yet")

    settings = AccountsSettings.from_env(servers.service_env("accounts", pki_dir, tmp_path))
    server = ServiceServer(settings.server, descriptors=[pb.DESCRIPTOR.services_by_name["AccountsService"]],
                           register=lambda s: None, ready_check=ping)
    server.start()
    try:
        with servers.channel(pki_dir, server.port, "operator") as ch:
            check = health_pb2_grpc.HealthStub(ch).Check
            assert check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.NOT_SERVING
            store_up.set()
            servers.wait_serving(pki_dir, server.port, timeout=10)
            store_up.clear()  # the store goes away again: so does readiness
            deadline = time.monotonic() + 10
            while check(health_pb2.HealthCheckRequest(), timeout=5).status != health_pb2.HealthCheckResponse.NOT_SERVING:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        server.stop(0).wait(10)


def test_restarting_a_service_under_load_cuts_off_no_call(pki_dir, tmp_path):
    """SIGTERM first turns the routing health NOT_SERVING; callers' channels (health-checked round robin)
    stop sending there, wait for the restarted process, and no call is refused or cancelled."""
    from runtime.calls import CallContext
    from runtime.clients import ServiceClients
    from runtime.settings import TlsFiles

    env = servers.service_env("accounts", pki_dir, tmp_path, SHUTDOWN_GRACE_SECONDS="5")
    service = servers.ServiceProcess("services.accounts", env)
    servers.wait_serving(pki_dir, service.port)
    port = service.port
    clients = ServiceClients(TlsFiles(pki_dir / "ca.pem", pki_dir / "edge.pem", pki_dir / "edge.key"),
                             {SERVICE: f"127.0.0.1:{port}"})
    method = pb.DESCRIPTOR.services_by_name["AccountsService"].methods_by_name["GetJwks"]
    stop, outcomes = threading.Event(), []

    def call_again_and_again():
        while not stop.is_set():
            try:
                clients.call(method, pb.GetJwksRequest(), CallContext.starting_now(10))
                outcomes.append("OK")
            except grpc.RpcError as error:
                outcomes.append(error.code().name)

    callers = [threading.Thread(target=call_again_and_again) for _ in range(8)]
    try:
        for caller in callers:
            caller.start()
        for _ in range(3):
            time.sleep(1)
            assert service.stop() == 0
            service = servers.ServiceProcess("services.accounts", {**env, "GRPC_PORT": str(port)})
            servers.wait_serving(pki_dir, port)
        time.sleep(1)
    finally:
        stop.set()
        for caller in callers:
            caller.join(30)
        clients.close()
        service.stop()
    assert outcomes.count("OK") > 100 and set(outcomes) == {"OK"}, {code: outcomes.count(code) for code in set(outcomes)}


def test_health_changes_racing_watchers_that_come_and_go_never_stall_the_server(pki_dir, tmp_path):
    """Every caller's channel watches the routing health name, and watchers come and go while the status
    changes (readiness, shutdown). The stock grpc health servicer deadlocks the server on that race."""
    from grpc_health.v1 import health_pb2 as hpb

    from runtime.channels import ROUTING_HEALTH_NAME
    from runtime.server import ServiceServer

    settings = AccountsSettings.from_env(servers.service_env("accounts", pki_dir, tmp_path))
    server = ServiceServer(settings.server, descriptors=[pb.DESCRIPTOR.services_by_name["AccountsService"]],
                           register=lambda s: None, ready_check=lambda: None)
    server.start()
    stop = threading.Event()

    def watch_and_leave():
        while not stop.is_set():
            with servers.channel(pki_dir, server.port, "operator") as ch:
                watch = health_pb2_grpc.HealthStub(ch).Watch(hpb.HealthCheckRequest(service=ROUTING_HEALTH_NAME), timeout=5)
                with contextlib.suppress(grpc.RpcError):
                    next(watch)

    def flip():
        while not stop.is_set():
            for status in (hpb.HealthCheckResponse.NOT_SERVING, hpb.HealthCheckResponse.SERVING):
                server.health.set(ROUTING_HEALTH_NAME, status)

    workers = [threading.Thread(target=watch_and_leave, daemon=True) for _ in range(6)]
    workers.append(threading.Thread(target=flip, daemon=True))
    try:
        for worker in workers:
            worker.start()
        time.sleep(6)
        stop.set()
        for worker in workers:
            worker.join(10)
        assert not any(worker.is_alive() for worker in workers), "a watcher or a status change is stuck"
        with servers.channel(pki_dir, server.port, "operator") as ch:
            assert health_pb2_grpc.HealthStub(ch).Check(hpb.HealthCheckRequest(), timeout=5).status == \
                hpb.HealthCheckResponse.SERVING
    finally:
        server.stop(0).wait(10)
