"""The system as an operator runs it: accounts, catalog, orders and the edge (gunicorn) as real
processes over real mTLS, on the embedded store or on Cassandra."""

from __future__ import annotations

import pathlib
import time

import requests

from harness import servers

ACCOUNTS = "shop.accounts.v1.AccountsService"
CATALOG = "shop.catalog.v1.CatalogService"
ORDERS = "shop.orders.v1.OrdersService"
ISSUER = servers.ISSUER


class Stack:
    def __init__(self, pki_dir: pathlib.Path, data_dir: pathlib.Path, *, store_env: dict | None = None,
                 catalog_replicas: int = 1, orders_env: dict | None = None, telemetry_env: dict | None = None,
                 metrics: bool = False, tls: bool = False, edge_env: dict | None = None):
        self.pki_dir, self._data_dir = pki_dir, data_dir
        self._edge_env = edge_env or {}  # the edge's own settings (EDGE_WORKERS, EDGE_MAX_QUEUE_MS, ...)
        # tls: the edge serves HTTPS with its dev certificate; clients verify it against the dev CA.
        self.verify: str | bool = str(pki_dir / "ca.pem") if tls else True
        self._edge_tls = {"EDGE_TLS_CERT_FILE": str(pki_dir / "edge.pem"),
                          "EDGE_TLS_KEY_FILE": str(pki_dir / "edge.key")} if tls else {}
        self._store_env = store_env or {}
        self._telemetry_env = telemetry_env or {}
        self.metrics_ports: dict[str, int] = {}
        self._metrics = metrics
        self._started: list[servers.ServiceProcess] = []
        try:
            self._boot(catalog_replicas, orders_env or {})
            self.admin = servers.create_admin(self.env("accounts"), "stackadmin")
        except BaseException:  # a stack that fails to start leaves no process behind
            for process in reversed(self._started):
                process.stop()
            raise

    def _boot(self, catalog_replicas: int, orders_env: dict) -> None:
        self.accounts = self._start("accounts")
        jwks = {"JWKS_TARGET": f"127.0.0.1:{self.accounts.port}", "JWKS_METHOD": f"/{ACCOUNTS}/GetJwks"}
        self._service_env = {**jwks, "RECOVERY_INTERVAL_SECONDS": "0.5", "RECOVERY_AGE_SECONDS": "2"}
        self.catalogs = [self._start("catalog") for _ in range(catalog_replicas)]
        self._orders_env = orders_env
        self.orders = self._start("orders", **self._orders_env)
        self.edge = self._track(servers.ServiceProcess("edge", {
            "EDGE_PORT": "0", "TLS_DIR": str(self.pki_dir), "TOKEN_ISSUER": ISSUER, "TOKEN_AUDIENCE": servers.AUDIENCE,
            "EDGE_WORKERS": "2",
            "EDGE_UPSTREAMS": f"{ACCOUNTS}=127.0.0.1:{self.accounts.port},{CATALOG}={self.catalog_target},"
                              f"{ORDERS}=127.0.0.1:{self.orders.port}",
            "JWKS_METHOD": f"/{ACCOUNTS}/GetJwks", "OAUTH_TOKEN_METHOD": f"/{ACCOUNTS}/IssueToken",
            "OAUTH_REVOKE_METHOD": f"/{ACCOUNTS}/RevokeToken", "OAUTH_AUTHORIZE_METHOD": f"/{ACCOUNTS}/Authorize",
            "OAUTH_METADATA_METHOD": f"/{ACCOUNTS}/GetServerMetadata", "EDGE_REALM": "shop", **self._telemetry_env,
            **self._edge_tls, **self._edge_env,
            **({"EDGE_METRICS_PORT": str(self.metrics_ports.setdefault("edge", servers.free_port()))}
               if self._metrics else {}),
        }))
        self.url = f"{'https' if self._edge_tls else 'http'}://127.0.0.1:{self.edge.port}"
        self._wait_ready()

    @property
    def catalog_target(self) -> str:
        """Every catalog replica behind one target, balanced round-robin by the channel."""
        return "ipv4:" + ",".join(f"127.0.0.1:{c.port}" for c in self.catalogs)

    def env(self, service: str, **overrides: str) -> dict[str, str]:
        env = servers.service_env(service, self.pki_dir, self._data_dir, TOKEN_ISSUER=ISSUER, **self._store_env)
        if "CASSANDRA_KEYSPACE" in self._store_env:  # one keyspace per service, as in production
            env["CASSANDRA_KEYSPACE"] = f"{self._store_env['CASSANDRA_KEYSPACE']}_{service}"
        if service != "accounts":
            env.update(self._service_env)
        if service == "orders":
            env.update(ACCOUNTS_TARGET=f"127.0.0.1:{self.accounts.port}", CATALOG_TARGET=self.catalog_target)
        env.update(self._telemetry_env)
        if self._metrics:
            env["METRICS_PORT"] = str(self.metrics_ports.setdefault(service, servers.free_port()))
        env.update(overrides)
        return env

    def _start(self, service: str, *, fault: str | None = None, **overrides: str) -> servers.ServiceProcess:
        module, args = ("harness.faults", (fault,)) if fault else (f"services.{service}", ())
        started = self._track(servers.ServiceProcess(module, self.env(service, **overrides), args=args))
        servers.wait_serving(self.pki_dir, started.port)
        return started

    def _track(self, process: servers.ServiceProcess) -> servers.ServiceProcess:
        self._started.append(process)
        return process

    def restart(self, service: str, process: servers.ServiceProcess, *, fault: str | None = None,
                **overrides: str) -> servers.ServiceProcess:
        """Starts `service` again on the port `process` had (after it stopped or crashed), with
        a fault of harness/faults.py built in if one is named."""
        process.stop()
        restarted = self._start(service, fault=fault, GRPC_PORT=str(process.port), **overrides)
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
        codes = {name: p.stop() for name, p in [("edge", self.edge), ("orders", self.orders),
                                                *(("catalog", c) for c in self.catalogs), ("accounts", self.accounts)]}
        assert set(codes.values()) <= {0}, codes
