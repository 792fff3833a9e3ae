"""The system as an operator runs it: accounts, catalog, orders and the edge (gunicorn) as real
processes over real mTLS, on the embedded store or on Cassandra."""

from __future__ import annotations

import os
import pathlib
import time

import requests

from harness import servers
from harness.dns import DnsServer
from services.registry import registry

ISSUER = servers.ISSUER


class Stack:
    """Every service of the registry (services/workloads.toml, or `workloads_file` with more), in
    its order, then the edge in front of them all. `replicas` starts more than one of a service
    (behind one round-robin target); `service_env` adds settings to one service's processes;
    `python_path` is where a service from outside the repository has its code.

    `dns=True` puts each service behind a DNS name, as Kubernetes and Compose do: replica i listens on
    127.0.0.<i+1> on one port, callers dial `<service>:<port>` through a DNS server of the stack's own
    (harness/dns.py), and `add_replica` / `withdraw` change the name's addresses under load. Without
    it, callers get a fixed list of 127.0.0.1 ports."""

    def __init__(self, pki_dir: pathlib.Path, data_dir: pathlib.Path, *, store_env: dict | None = None,
                 catalog_replicas: int = 1, orders_env: dict | None = None, telemetry_env: dict | None = None,
                 metrics: bool = False, tls: bool = False, edge_env: dict | None = None,
                 workloads_file: pathlib.Path | None = None, replicas: dict[str, int] | None = None,
                 service_env: dict[str, dict] | None = None, python_path: tuple[pathlib.Path, ...] = (),
                 dns: bool = False):
        self.pki_dir, self._data_dir = pki_dir, data_dir
        self._edge_env = edge_env or {}  # the edge's own settings (EDGE_WORKERS, EDGE_MAX_QUEUE_MS, ...)
        # tls: the edge serves HTTPS with its dev certificate; clients verify it against the dev CA.
        self.verify: str | bool = str(pki_dir / "ca.pem") if tls else True
        self._edge_tls = {"EDGE_TLS_CERT_FILE": str(pki_dir / "edge.pem"),
                          "EDGE_TLS_KEY_FILE": str(pki_dir / "edge.key")} if tls else {}
        self._store_env = store_env or {}
        self._telemetry_env = telemetry_env or {}
        self._registry_env = {"WORKLOADS_FILE": str(workloads_file)} if workloads_file else {}
        if python_path:
            self._registry_env["PYTHONPATH"] = os.pathsep.join([*map(str, python_path), os.environ.get("PYTHONPATH", "")])
        self.registry = registry(self._registry_env)
        self._replicas = {"catalog": catalog_replicas, **(replicas or {})}
        self._extra_env = {"orders": orders_env or {}, **(service_env or {})}
        self.metrics_ports: dict[str, int] = {}  # the first replica's (each process has its `metrics_port`)
        self._metrics = metrics
        self._started: list[servers.ServiceProcess] = []
        self.processes: dict[str, list[servers.ServiceProcess]] = {}
        self.dns = DnsServer({}).__enter__() if dns else None
        try:
            self._boot()
            self.admin = servers.create_admin(self.env("accounts"), "stackadmin")
        except BaseException:  # a stack that fails to start leaves no process behind
            for process in reversed(self._started):
                process.stop()
            self._stop_dns()
            raise

    # The shop's services by name, as tests reach them (and replace them after a restart).
    accounts = property(lambda self: self.processes["accounts"][0],
                        lambda self, process: self.processes["accounts"].__setitem__(0, process))
    orders = property(lambda self: self.processes["orders"][0],
                      lambda self, process: self.processes["orders"].__setitem__(0, process))
    catalogs = property(lambda self: self.processes["catalog"])

    def _boot(self) -> None:
        for workload in self.registry.services:
            self.processes[workload.name] = []
            for _ in range(self._replicas.get(workload.name, 1)):
                self.processes[workload.name].append(self._start(workload.name, **self._extra_env.get(workload.name, {})))
            self._publish(workload.name)
        self.edge = self._track(servers.ServiceProcess("edge", {
            "EDGE_PORT": "0", "TLS_DIR": str(self.pki_dir), "TOKEN_ISSUER": ISSUER, "TOKEN_AUDIENCE": servers.AUDIENCE,
            "EDGE_WORKERS": "2",
            "EDGE_UPSTREAMS": ",".join(f"{w.grpc}={self.target(w.name)}" for w in self.registry.services),
            "JWKS_METHOD": f"/{self._accounts}/GetJwks", "OAUTH_TOKEN_METHOD": f"/{self._accounts}/IssueToken",
            "OAUTH_REVOKE_METHOD": f"/{self._accounts}/RevokeToken",
            "OAUTH_AUTHORIZE_METHOD": f"/{self._accounts}/Authorize",
            "OAUTH_METADATA_METHOD": f"/{self._accounts}/GetServerMetadata", "EDGE_REALM": "shop",
            **self._telemetry_env, **self._registry_env, **self._edge_tls, **self._edge_env,
            **({"EDGE_METRICS_PORT": str(self.metrics_ports.setdefault("edge", servers.free_port()))}
               if self._metrics else {}),
        }))
        self.url = f"{'https' if self._edge_tls else 'http'}://127.0.0.1:{self.edge.port}"
        self._wait_ready()

    @property
    def _accounts(self) -> str:
        return self.registry["accounts"].grpc

    def target(self, service: str) -> str:
        """Every running replica of `service` behind one target, balanced round-robin by the channel."""
        if self.dns:
            return self.dns.target(service, self.processes[service][0].port)
        return "ipv4:" + ",".join(f"127.0.0.1:{p.port}" for p in self.processes[service])

    def add_replica(self, service: str) -> servers.ServiceProcess:
        """Starts one more replica of `service` on the next free address of its name and publishes it
        (dns=True): callers find it when they next resolve the name, without restarting."""
        assert self.dns, "replicas are added behind a DNS name: Stack(dns=True)"
        added = self._start(service, **self._extra_env.get(service, {}))
        self.processes[service].append(added)
        self._publish(service)
        return added

    def withdraw(self, service: str, process: servers.ServiceProcess) -> None:
        """Takes a replica's address out of its name (as Kubernetes does when a pod is no longer ready)."""
        assert self.dns, "Stack(dns=True)"
        self.dns.records[service] = [a for a in self.dns.records[service] if a != process.host]

    def _publish(self, service: str) -> None:
        if self.dns:
            self.dns.records[service] = [p.host for p in self.processes[service] if p.process.poll() is None]

    def _next_host(self, service: str) -> tuple[str, str]:
        """(GRPC_HOST, GRPC_PORT) for a new replica: one address per replica, the name's one port."""
        running = self.processes.get(service) or []
        if not self.dns or not running:
            return "127.0.0.1", "0"
        taken = {p.host for p in running}
        host = next(f"127.0.0.{i}" for i in range(1, 255) if f"127.0.0.{i}" not in taken)
        return host, str(running[0].port)

    @property
    def catalog_target(self) -> str:
        return self.target("catalog")

    def env(self, service: str, **overrides: str) -> dict[str, str]:
        env = servers.service_env(service, self.pki_dir, self._data_dir, TOKEN_ISSUER=ISSUER, **self._store_env)
        if "CASSANDRA_KEYSPACE" in self._store_env:  # one keyspace per service, as in production
            env["CASSANDRA_KEYSPACE"] = f"{self._store_env['CASSANDRA_KEYSPACE']}_{service}"
        if service != "accounts":
            accounts = self.processes["accounts"][0].port
            env.update({"JWKS_TARGET": f"127.0.0.1:{accounts}", "JWKS_METHOD": f"/{self._accounts}/GetJwks",
                        "RECOVERY_INTERVAL_SECONDS": "0.5", "RECOVERY_AGE_SECONDS": "2"})
        # Where each service it calls runs (ACCOUNTS_TARGET, CATALOG_TARGET, ...).
        env.update({self.registry[callee].target_variable: self.target(callee) for callee in self.registry[service].calls})
        env.update(self._telemetry_env)
        env.update(self._registry_env)
        env.update(overrides)
        return env

    def _start(self, service: str, *, fault: str | None = None, **overrides: str) -> servers.ServiceProcess:
        module, args = ("harness.faults", (fault,)) if fault else (self.registry[service].module, ())
        host, port = self._next_host(service)
        overrides = {"GRPC_HOST": host, "GRPC_PORT": port, **overrides}
        if self._metrics:  # one metrics port per process; the first replica's is metrics_ports[service]
            overrides.setdefault("METRICS_PORT", str(servers.free_port()))
            self.metrics_ports.setdefault(service, int(overrides["METRICS_PORT"]))
        started = self._track(servers.ServiceProcess(module, self.env(service, **overrides), args=args))
        started.host = overrides["GRPC_HOST"]
        started.metrics_port = int(overrides["METRICS_PORT"]) if self._metrics else None
        servers.wait_serving(self.pki_dir, started.port, host=started.host)
        return started

    def _track(self, process: servers.ServiceProcess) -> servers.ServiceProcess:
        self._started.append(process)
        return process

    def restart(self, service: str, process: servers.ServiceProcess, *, fault: str | None = None,
                **overrides: str) -> servers.ServiceProcess:
        """Starts `service` again on the port `process` had (after it stopped or crashed), with
        a fault of harness/faults.py built in if one is named."""
        process.stop()
        same = {"GRPC_HOST": process.host, "GRPC_PORT": str(process.port),
                **({"METRICS_PORT": str(process.metrics_port)} if process.metrics_port else {})}
        restarted = self._start(service, fault=fault, **{**same, **overrides})
        if self.dns and restarted.host not in self.dns.records[service]:
            self.dns.records[service].append(restarted.host)  # withdrawn while it was down: back in the name
        if hasattr(self, "edge"):
            self._wait_ready()  # the edge's channel has found it again
        return restarted

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/readyz", timeout=5, verify=self.verify).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or too busy to answer in time
                pass
            time.sleep(0.2)
        raise TimeoutError("edge not ready:\n" + "".join(self.edge.lines[-20:]))

    def register(self, username: str, password: str = servers.PASSWORD) -> dict:
        reply = requests.post(f"{self.url}/v1/accounts", json={
            "username": username, "email": f"{username}@example.com", "password": password}, timeout=10, verify=self.verify)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def token(self, username: str, password: str = servers.PASSWORD, **form: str) -> dict:
        reply = requests.post(f"{self.url}/oauth2/token", data={
            "grant_type": "password", "username": username, "password": password, **form}, timeout=10, verify=self.verify)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def stop(self) -> None:
        """Stops the edge, then the services in the reverse of their start order; each must exit 0."""
        stopping = [("edge", self.edge)] + [(name, p) for name in reversed(self.processes) for p in self.processes[name]]
        codes = {f"{name}#{i}": p.stop() for i, (name, p) in enumerate(stopping)}
        self._stop_dns()
        assert set(codes.values()) <= {0}, codes

    def _stop_dns(self) -> None:
        if self.dns:
            self.dns.__exit__(None, None, None)


class CallsPerReplica:
    """Each running replica of `service` by address: calls of gRPC services whose name contains
    `grpc_service` it answered since the last look, read from its own metrics (Stack(metrics=True))."""

    def __init__(self, stack: Stack, service: str, grpc_service: str):
        self._stack, self._service, self._grpc_service = stack, service, grpc_service
        self._last: dict[str, float] = {}

    def since_last(self) -> dict[str, float]:
        running = [p for p in self._stack.processes[self._service] if p.process.poll() is None]
        now = {p.host: servers.calls_answered(p, self._grpc_service) for p in running}
        seen = {host: count - self._last.get(host, 0.0) for host, count in now.items()}
        self._last = now
        return seen
