"""Real servers and mTLS channels for tests: in-process gRPC servers bound to port 0,
service processes started like an operator would start them, and certificates of
every kind (valid, from another CA, expired) made by the project's own PKI code."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import grpc
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from harness import bad_certificates
from runtime import pki
from services.registry import registry
from tools import processes
from tools.ports import free_ports

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRUST_DOMAIN = "shop.local"
WORKLOADS = registry().identities  # every service of services/workloads.toml, the edge and the operator
ISSUER, AUDIENCE = "https://shop.local", "shop-api"  # what the shop's access tokens say
PASSWORD = "correct horse battery"
# Tests hash many passwords; scrypt's cost is a setting, lowered here only.
FAST_HASH = {"PASSWORD_SCRYPT_LOG2_N": "10"}


def write_test_pki(directory: pathlib.Path) -> pathlib.Path:
    """The dev PKI plus certificates that must be refused: another CA's, an expired one, and the
    dev CA's own that are flawed (bad_certificates.REFUSED: a CA leaf, a weak key, ...)."""
    pki.write_dev_pki(directory, TRUST_DOMAIN, WORKLOADS)
    ca = pki.load_issued(directory / "ca.pem", directory / "ca.key")
    rogue_ca = pki.create_ca("Rogue CA")
    _save(directory, "rogue-ca", rogue_ca)
    _save(directory, "rogue", pki.issue_certificate(rogue_ca, "edge", TRUST_DOMAIN))
    past = datetime.now(UTC) - timedelta(days=10)
    _save(directory, "expired", pki.issue_certificate(ca, "edge", TRUST_DOMAIN, not_before=past, not_after=past + timedelta(days=1)))
    _save(directory, "foreign-domain", pki.issue_certificate(ca, "edge", "evil.example"))
    for name, make in bad_certificates.REFUSED.items():
        _save(directory, name, make(ca, "edge", TRUST_DOMAIN))
    return directory


def _save(directory: pathlib.Path, name: str, issued) -> None:
    (directory / f"{name}.pem").write_bytes(issued.cert_pem)
    (directory / f"{name}.key").write_bytes(issued.key_pem)


def service_env(service: str, pki_dir: pathlib.Path, data_dir: pathlib.Path, **overrides: str) -> dict[str, str]:
    """Environment for a service: port 0, test PKI, embedded store in data_dir."""
    env = {
        "GRPC_PORT": "0", "TLS_DIR": str(pki_dir), "TRUST_DOMAIN": TRUST_DOMAIN, "STORE": "embedded",
        "TOKEN_ISSUER": ISSUER, "TOKEN_AUDIENCE": AUDIENCE,
        "SQLITE_PATH": str(data_dir / f"{service}.sqlite3"), "SHUTDOWN_GRACE_SECONDS": "5", **FAST_HASH,
        # Most tests get their tokens the short way, as the dev walk-through does; tests of the
        # default (off) and of the browser flow say so.
        "OAUTH_PASSWORD_GRANT": "on",
    }
    env.update(overrides)
    return env


def cassandra_env(settings) -> dict[str, str]:
    """Variables that point a service at the test Cassandra described by CassandraSettings."""
    env = {"STORE": "cassandra", "CASSANDRA_CONTACT_POINTS": ",".join(settings.contact_points),
           "CASSANDRA_KEYSPACE": settings.keyspace, "CASSANDRA_CONSISTENCY": settings.consistency}
    if settings.protocol_version:
        env["CASSANDRA_PROTOCOL_VERSION"] = str(settings.protocol_version)
    return env


def channel(pki_dir: pathlib.Path, port: int, cert: str = "edge", *, ca: str = "ca",
            host: str = "127.0.0.1") -> grpc.Channel:
    """An mTLS channel presenting `<cert>.pem`; cert=None presents no client certificate. A server on
    another loopback address than 127.0.0.1 is checked against its certificate's name "localhost"."""
    if cert is None:
        creds = grpc.ssl_channel_credentials((pki_dir / f"{ca}.pem").read_bytes())
    else:
        creds = grpc.ssl_channel_credentials(
            (pki_dir / f"{ca}.pem").read_bytes(), (pki_dir / f"{cert}.key").read_bytes(), (pki_dir / f"{cert}.pem").read_bytes())
    options = [] if host == "127.0.0.1" else [("grpc.ssl_target_name_override", "localhost")]
    return grpc.secure_channel(f"{host}:{port}", creds, options=options)


def calls_answered(process: ServiceProcess, service: str) -> float:
    """Calls a service process has answered (any status) for gRPC services whose name contains
    `service`, from its own Prometheus endpoint (METRICS_PORT); 0 for a process that is gone."""
    try:
        text = requests.get(f"http://127.0.0.1:{process.metrics_port}/metrics", timeout=2).text
    except requests.RequestException:
        return 0.0
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "grpc_server_handled_total" and service in sample.labels.get("grpc_service", ""))


def wait_serving(pki_dir: pathlib.Path, port: int, timeout: float = 30.0, service: str = "",
                 host: str = "127.0.0.1") -> None:
    with channel(pki_dir, port, "operator", host=host) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {port} not SERVING after {timeout}s")
            time.sleep(0.1)


@contextlib.contextmanager
def in_process(create_server, settings, pki_dir: pathlib.Path):
    """Runs a service's create_server() in this process until the block ends; yields the port."""
    server, port = create_server(settings)
    server.start()
    try:
        wait_serving(pki_dir, port)
        yield port
    finally:
        server.stop(0).wait(10)


class ServiceProcess:
    """`python -m <module>` as a child process; learns its port from its startup log line."""

    # "accounts listening on 127.0.0.1:PORT (mTLS)", or gunicorn's "Listening at: http(s)://127.0.0.1:PORT"
    PORT_LINE = re.compile(r"(?:listening on |Listening at: https?://)[\d.]+:(\d+)")

    def __init__(self, module: str, env: dict[str, str], timeout: float = 60, args: tuple[str, ...] = ()):
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args], env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        self.lines: list[str] = []
        self.port = 0
        self.host = "127.0.0.1"  # the address it listens on (harness/stack.py gives replicas their own)
        self.metrics_port: int | None = None
        self._started = threading.Event()
        # The reader drains the pipe for the child's whole life, so the child never blocks on it.
        threading.Thread(target=self._read, daemon=True).start()
        if not self._started.wait(timeout) or not self.port:
            self.stop()
            raise RuntimeError(f"{module} did not start:\n" + "".join(self.lines[-30:]))

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            found = self.PORT_LINE.search(line)
            if not self.port and found:
                self.port = int(found.group(1))
                self._started.set()
        self._started.set()  # the child exited

    def wait_for_lines(self, pattern: str, count: int, timeout: float = 60) -> None:
        """Waits until `count` lines of the child's output match `pattern` (a regular expression)."""
        found = re.compile(pattern)
        ends = time.monotonic() + timeout
        while sum(1 for line in list(self.lines) if found.search(line)) < count:
            if time.monotonic() > ends or self.process.poll() is not None:
                raise RuntimeError(f"no {count} lines matching {pattern!r}:\n" + "".join(self.lines[-30:]))
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signals the child (by its PID) and waits; returns its exit code."""
        return processes.stop(self.process, sig, timeout)


def status_of(call, *args, **kwargs) -> grpc.StatusCode:
    """The status a unary call ends with (OK or the error's code), for counting outcomes of a race."""
    try:
        call(*args, **kwargs)
        return grpc.StatusCode.OK
    except grpc.RpcError as error:
        return error.code()


def bearer(token: str) -> tuple[tuple[str, str]]:
    """gRPC metadata carrying an end user's access token, as the edge forwards it."""
    return (("authorization", f"Bearer {token}"),)


def create_admin(accounts_env: dict[str, str], username: str) -> tuple[str, str]:
    """An administrator made the way an operator makes one: directly in the accounts store."""
    from services.accounts.server import AccountsSettings
    from services.accounts.service import AccountsService
    from services.accounts.store import open_store

    settings = AccountsSettings.from_env(accounts_env)
    store = open_store(settings.server)
    try:
        AccountsService(store, settings.password_hasher()).register(
            username, f"{username}@example.com", PASSWORD, {}, roles=("admin",))
    finally:
        store.close()
    return username, PASSWORD


def free_port() -> int:
    """A port that is free on 127.0.0.1 right now (for servers that cannot bind port 0)."""
    return free_ports()[0]
