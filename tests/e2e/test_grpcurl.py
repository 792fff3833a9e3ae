"""An operator with the operator certificate uses the real grpcurl binary against a running service.

grpcurl is the one `make grpcurl` links into bin/: built from source at the version pinned in
tools/go/grpcurl (tools.gotools; the first run builds it, later runs find it in the cache).
"""

import json
import subprocess

import pytest

from harness import servers
from runtime import healthcheck
from tools import gotools


@pytest.fixture(scope="module")
def grpcurl_binary():
    return gotools.ensure("grpcurl")


@pytest.fixture(scope="module")
def accounts_process(tmp_path_factory, grpcurl_binary):
    pki_dir = servers.write_test_pki(tmp_path_factory.mktemp("pki"))
    service = servers.ServiceProcess("services.accounts", servers.service_env("accounts", pki_dir, tmp_path_factory.mktemp("data")))
    servers.wait_serving(pki_dir, service.port)
    yield grpcurl_binary, pki_dir, service.port
    assert service.stop() == 0


def grpcurl(binary, pki_dir, port, *command, flags=(), identity="operator"):
    """grpcurl [tls flags] [flags] 127.0.0.1:<port> <command...>, as an operator types it."""
    tls = ["-cacert", str(pki_dir / "ca.pem"), "-cert", str(pki_dir / f"{identity}.pem"), "-key", str(pki_dir / f"{identity}.key")]
    return subprocess.run([str(binary), *tls, "-max-time", "10", *flags, f"127.0.0.1:{port}", *command],
                          capture_output=True, text=True, timeout=30)


def test_list_through_reflection_names_the_service_and_health(accounts_process):
    result = grpcurl(*accounts_process, "list")
    assert result.returncode == 0, result.stderr
    assert {"shop.accounts.v1.AccountsService", "grpc.health.v1.Health"} <= set(result.stdout.split())


def test_health_check_reports_serving(accounts_process):
    result = grpcurl(*accounts_process, "grpc.health.v1.Health/Check")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "SERVING"}


def test_describe_shows_the_request_fields(accounts_process):
    result = grpcurl(*accounts_process, "describe", "shop.accounts.v1.CreateAccountRequest")
    assert result.returncode == 0, result.stderr
    assert "string username = 1" in result.stdout


def test_registration_call_and_its_duplicate(accounts_process):
    body = json.dumps({"username": "grpcurler", "email": "grpcurler@example.com", "password": "correct horse battery"})
    created = grpcurl(*accounts_process, "shop.accounts.v1.AccountsService/CreateAccount", flags=("-d", body))
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["username"] == "grpcurler"
    again = grpcurl(*accounts_process, "shop.accounts.v1.AccountsService/CreateAccount", flags=("-d", body))
    assert again.returncode != 0 and "AlreadyExists" in again.stderr


def test_grpcurl_without_a_client_certificate_is_refused(accounts_process):
    binary, pki_dir, port = accounts_process
    result = subprocess.run([str(binary), "-cacert", str(pki_dir / "ca.pem"), "-max-time", "10", f"127.0.0.1:{port}", "list"],
                            capture_output=True, text=True, timeout=30)
    # The port listens (the other tests reach it with the certificate), yet no connection is made:
    # the server ends the TLS handshake, and grpcurl gives up dialing at -max-time.
    assert result.returncode != 0
    assert "Failed to dial target host" in result.stderr and "connection refused" not in result.stderr


def test_reflection_is_for_the_operator_only_while_health_stays_open_to_every_workload(accounts_process):
    """Another workload's certificate (here the edge's) passes the handshake but not reflection's policy."""
    listed = grpcurl(*accounts_process, "list", identity="edge")
    assert listed.returncode != 0 and "PermissionDenied" in listed.stderr and "may not call" in listed.stderr, listed.stderr
    _, pki_dir, port = accounts_process  # (grpcurl itself needs reflection to describe Health)
    assert healthcheck.status(f"127.0.0.1:{port}", healthcheck.probe_tls(pki_dir, "edge"), timeout=10) == "SERVING"
