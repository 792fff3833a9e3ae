"""Who may talk to a service: only CA-signed workloads, and only the ones a method names."""

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from harness import bad_certificates, servers
from runtime.errors import details_of
from shop.accounts.v1 import accounts_pb2 as pb


def _jwks(stub):
    return stub.GetJwks(pb.GetJwksRequest(), timeout=5)


def test_workload_named_by_the_method_policy_is_served(accounts):
    assert _jwks(accounts("edge")).keys


def test_workload_not_named_by_the_policy_is_denied_with_details(accounts):
    # catalog may read the JWKS but may not register accounts.
    with pytest.raises(grpc.RpcError) as raised:
        accounts("catalog").CreateAccount(pb.CreateAccountRequest(username="mallory"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = [d for d in details_of(raised.value) if isinstance(d, error_details_pb2.ErrorInfo)]
    assert info and info[0].reason == "CALLER_NOT_ALLOWED" and info[0].metadata["caller"] == "catalog"


def test_operator_cannot_call_a_method_reserved_for_the_edge(accounts):
    with pytest.raises(grpc.RpcError) as raised:
        accounts("operator").UpdateAccount(pb.UpdateAccountRequest(id="x"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_identity_from_another_trust_domain_is_denied(accounts):
    with pytest.raises(grpc.RpcError) as raised:
        _jwks(accounts("foreign-domain"))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("cert", [None, "rogue", "expired"], ids=["no-certificate", "other-ca", "expired"])
def test_handshake_is_refused_without_a_valid_client_certificate(accounts, cert):
    with pytest.raises(grpc.RpcError) as raised:
        _jwks(accounts(cert))
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_refuses_a_server_it_cannot_verify(pki_dir, accounts_port):
    # The client trusts only the rogue CA, so the real server's certificate is rejected.
    with servers.channel(pki_dir, accounts_port, "rogue", ca="rogue-ca") as ch, pytest.raises(grpc.RpcError) as raised:
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("cert", sorted(bad_certificates.REFUSED))
def test_a_ca_signed_certificate_with_a_flaw_is_refused_before_any_method_runs(accounts, pki_dir, accounts_port, cert):
    # The handshake accepts these (BoringSSL does not check them); the interceptor must not, on any
    # method, health and reflection included.
    with pytest.raises(grpc.RpcError) as raised:
        _jwks(accounts(cert))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = [d for d in details_of(raised.value) if isinstance(d, error_details_pb2.ErrorInfo)]
    assert info and info[0].reason == "PEER_CERTIFICATE_REFUSED"
    with servers.channel(pki_dir, accounts_port, cert) as ch:
        with pytest.raises(grpc.RpcError) as health:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as reflection:
            list(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
        assert reflection.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("cert", ["catalog", "operator", "orders"])
def test_health_is_open_to_any_mtls_peer(pki_dir, accounts_port, cert):
    with servers.channel(pki_dir, accounts_port, cert) as ch:
        response = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="shop.accounts.v1.AccountsService"), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_open_health_watches_hold_no_worker_thread(pki_dir, accounts_port):
    # The certificate check wraps health too; Watch must stay callback-based, or 16 watchers
    # (the server's worker count) would leave no thread for any other call.
    with servers.channel(pki_dir, accounts_port, "operator") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        watches = [stub.Watch(health_pb2.HealthCheckRequest(), timeout=30) for _ in range(20)]
        try:
            for watch in watches:
                assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        finally:
            for watch in watches:
                watch.cancel()
