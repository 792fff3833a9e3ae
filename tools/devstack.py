"""`make up`: every service and the edge on this machine, on the embedded store, over mTLS,
with Jaeger beside them.

Creates the dev PKI if needed, seeds the demo OAuth2 client and admin, starts Jaeger (v2, traces
in memory; tools/jaeger) and points every process's OTLP export at it, starts each process, waits
until each is ready (Jaeger healthy, grpc.health SERVING, the edge's /readyz), prints how to call
them and how to read a trace, and stops them all, by PID, on Ctrl-C or SIGTERM. The edge serves
HTTPS with its certificate from the dev CA (clients pass --cacert .dev/pki/ca.pem).

    JAEGER=off make up                   # no Jaeger; OTEL_* variables you set pass through as they are
    JAEGER_QUERY_HTTP_PORT=26686 make up # Jaeger's ports: the JAEGER_*_PORT variables of tools/jaeger
"""

from __future__ import annotations

import functools
import os
import pathlib
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable

from runtime import healthcheck
from runtime.pki import write_dev_pki
from runtime.settings import ConfigError, Env
from runtime.workloads import EDGE, setting_prefix
from services.registry import registry
from tools.jaeger import Jaeger, JaegerPorts

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKI = ROOT / ".dev" / "pki"
DATA = ROOT / ".dev" / "data"
CREDENTIALS = ROOT / ".dev" / "demo-credentials.json"
STOREFRONT = ROOT / "web" / "shop"
JAEGER_LOG = ROOT / ".dev" / "jaeger.log"
# The services, in start order, with their default ports and whom they call (services/workloads.toml).
REGISTRY = registry()
ACCOUNTS = REGISTRY["accounts"].grpc  # the issuer of tokens and keys, which the edge and the services ask

# Each one a setting too: ACCOUNTS_METRICS_PORT, CATALOG_METRICS_PORT, ..., EDGE_METRICS_PORT.
METRICS_PORTS = {name: int(os.environ.get(f"{setting_prefix(name)}_METRICS_PORT", default))
                 for name, default in {**{w.name: w.metrics_port for w in REGISTRY.services}, EDGE: 9100}.items()}
EDGE_PORT = int(os.environ.get("EDGE_PORT", "8080"))
# The shop's identity: the SPIFFE trust domain of its workloads, and the audience of its access tokens.
TRUST_DOMAIN, AUDIENCE = "shop.local", "shop-api"
WORKLOADS = REGISTRY.identities


def _ports() -> dict[str, int]:
    """Each service's gRPC port: ACCOUNTS_PORT, CATALOG_PORT, ... or the registry's default."""
    return {w.name: int(os.environ.get(f"{setting_prefix(w.name)}_PORT", w.port)) for w in REGISTRY.services}


def _jaeger_ports() -> JaegerPorts | None:
    """Jaeger's ports (JAEGER_*_PORT, checked), or None when JAEGER=off."""
    if Env().choice("JAEGER", "on", ("on", "off")) == "off":
        return None
    return JaegerPorts.from_env()


def _common_env(telemetry: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(telemetry or {})
    env.update({"TLS_DIR": str(PKI), "PYTHONUNBUFFERED": "1", "TRUST_DOMAIN": TRUST_DOMAIN,
                # A terminal is for a person: readable lines (JSON stays the default for containers and files).
                "LOG_FORMAT": env.get("LOG_FORMAT", "text"),
                "TOKEN_AUDIENCE": env.get("TOKEN_AUDIENCE", AUDIENCE),
                # Tokens name the edge as issuer, so its RFC 8414 metadata is consistent.
                "TOKEN_ISSUER": env.get("TOKEN_ISSUER", f"https://127.0.0.1:{EDGE_PORT}")})
    return env


def _service_env(name: str, port: int, telemetry: dict[str, str] | None = None) -> dict[str, str]:
    ports = _ports()
    return {**_common_env(telemetry), "GRPC_PORT": str(port), "STORE": os.environ.get("STORE", "embedded"),
            "SQLITE_PATH": str(DATA / f"{name}.sqlite3"), "METRICS_PORT": str(METRICS_PORTS[name]),
            # Services verify forwarded tokens with the keys accounts publishes.
            "JWKS_TARGET": f"127.0.0.1:{ports['accounts']}", "JWKS_METHOD": f"/{ACCOUNTS}/GetJwks",
            # Where each service it calls listens (ACCOUNTS_TARGET, CATALOG_TARGET, ...).
            **{REGISTRY[callee].target_variable: f"127.0.0.1:{ports[callee]}" for callee in REGISTRY[name].calls},
            # The legacy password grant stays on here for the README's curl walk-through (off by default).
            "OAUTH_PASSWORD_GRANT": os.environ.get("OAUTH_PASSWORD_GRANT", "on")}


def _edge_env(ports: dict[str, int], telemetry: dict[str, str]) -> dict[str, str]:
    upstreams = ",".join(f"{REGISTRY[name].grpc}=127.0.0.1:{port}" for name, port in ports.items())
    return {**_common_env(telemetry), "EDGE_PORT": str(EDGE_PORT), "EDGE_UPSTREAMS": upstreams,
            "EDGE_TLS_CERT_FILE": str(PKI / "edge.pem"), "EDGE_TLS_KEY_FILE": str(PKI / "edge.key"),
            "JWKS_METHOD": f"/{ACCOUNTS}/GetJwks", "OAUTH_TOKEN_METHOD": f"/{ACCOUNTS}/IssueToken",
            "OAUTH_REVOKE_METHOD": f"/{ACCOUNTS}/RevokeToken", "OAUTH_AUTHORIZE_METHOD": f"/{ACCOUNTS}/Authorize",
            "OAUTH_METADATA_METHOD": f"/{ACCOUNTS}/GetServerMetadata", "EDGE_REALM": "shop", "EDGE_API_TITLE": "Shop API",
            "EDGE_METRICS_PORT": str(METRICS_PORTS["edge"]),
            # Whoever calls from this machine may force a trace with a sampled traceparent (docs/observability.md).
            "EDGE_TRACE_TRUSTED_NETWORKS": os.environ.get("EDGE_TRACE_TRUSTED_NETWORKS", "127.0.0.0/8,::1"),
            **({"EDGE_SITE_DIR": str(STOREFRONT)} if (STOREFRONT / "index.html").is_file() else {})}


def _grpc_serving(port: int) -> bool:
    return healthcheck.status(f"127.0.0.1:{port}", healthcheck.probe_tls(PKI, "operator"), timeout=1) == "SERVING"


def _edge_ready() -> bool:
    try:
        context = ssl.create_default_context(cafile=str(PKI / "ca.pem"))
        with urllib.request.urlopen(f"https://127.0.0.1:{EDGE_PORT}/readyz", timeout=2, context=context) as reply:
            return reply.status == 200
    except OSError:
        return False


def _wait(ready, child: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        if ready():
            return True
        time.sleep(0.3)
    return False


def _traces_banner(jaeger: Jaeger | None) -> list[str]:
    if jaeger is None:
        exported = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        return ["", f"Traces: JAEGER=off; spans go to {exported or 'nowhere (OTEL_EXPORTER_OTLP_ENDPOINT is unset)'}."]
    query, ports = jaeger.query_url, jaeger.ports
    window = "query.start_time_min=$(date -u -d '-1 hour' +%FT%TZ)&query.start_time_max=$(date -u -d '+1 min' +%FT%TZ)"
    return [
        "",
        f"Traces: Jaeger v2 (up in {jaeger.started_in:.1f}s, traces in memory, log {JAEGER_LOG.relative_to(ROOT)}); "
        f"every process exports to OTLP 127.0.0.1:{ports.otlp_grpc} (gRPC; HTTP on :{ports.otlp_http}).",
        f"  query API {query}/api/v3 (this binary's UI page is a placeholder: docs/observability.md)",
        "  A request's trace id is the trace_id of the edge's access line printed here; a second later it reads back:",
        f"  curl -s {query}/api/v3/traces/TRACE_ID",
        f"  curl -s \"{query}/api/v3/traces?query.service_name=orders&{window}&query.num_traces=5\"",
        "  .venv/bin/python -m tools.jaeger traces orders       # the same as a list; `trace TRACE_ID`: as a tree",
    ]


def _banner(ports: dict[str, int], background: BackgroundJaeger | None) -> str:
    jaeger = background.jaeger if background else None
    tls = "-cacert .dev/pki/ca.pem -cert .dev/pki/operator.pem -key .dev/pki/operator.key"
    edge = f"https://127.0.0.1:{EDGE_PORT}"
    curl = "curl -s --cacert .dev/pki/ca.pem"
    lines = ["", "Shop is up (embedded store, mTLS between every process):",
             f"  edge      {edge}  (docs: {edge}/docs; HTTPS, certificate from the dev CA .dev/pki/ca.pem)",
             f"  storefront {edge}/shop/  (sign in with an account you create there; the browser must trust "
             ".dev/pki/ca.pem, or accept the warning once)"]
    lines += [f"  {name:<9} grpc 127.0.0.1:{port}   metrics http://127.0.0.1:{METRICS_PORTS[name]}/metrics"
              for name, port in ports.items()]
    lines += [f"  edge metrics http://127.0.0.1:{METRICS_PORTS['edge']}/metrics"]
    if jaeger is not None:
        lines += [f"  jaeger    query and UI {jaeger.query_url}   OTLP 127.0.0.1:{jaeger.ports.otlp_grpc}"]
    lines += [
        "",
        "Try it with curl:",
        f"  {curl} -X POST {edge}/v1/accounts -H 'Content-Type: application/json' \\",
        "       -d '{\"username\":\"alice\",\"email\":\"alice@example.com\",\"password\":\"correct horse battery\"}'",
        "  # the legacy password grant, on in make up only (OAUTH_PASSWORD_GRANT); browsers use /oauth2/authorize",
        f"  TOKEN=$({curl} {edge}/oauth2/token -d grant_type=password -d username=alice \\",
        "       -d 'password=correct horse battery' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        "  ID=$(python3 -c 'import base64,json,sys; p=sys.argv[1].split(\".\")[1]; print(json.loads(base64.urlsafe_b64decode(p+\"==\"))[\"sub\"])' $TOKEN)",
        f"  {curl} {edge}/v1/accounts/$ID -H \"Authorization: Bearer $TOKEN\"",
        f"  {curl} {edge}/v1/products -H \"Authorization: Bearer $TOKEN\"",
        "  PRODUCT=$(" + curl + " " + edge + "/v1/products -H \"Authorization: Bearer $TOKEN\" \\",
        "       | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"products\"][0][\"id\"])')",
        f"  ORDER=$({curl} -X POST {edge}/v1/orders -H \"Authorization: Bearer $TOKEN\" -H 'Idempotency-Key: first-order' \\",
        "       -H 'Content-Type: application/json' -d \"{\\\"items\\\":[{\\\"productId\\\":\\\"$PRODUCT\\\",\\\"quantity\\\":1}]}\" \\",
        "       | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])')",
        f"  {curl} {edge}/v1/orders -H \"Authorization: Bearer $TOKEN\"",
        f"  {curl} -X POST {edge}/v1/orders/$ORDER:cancel -H \"Authorization: Bearer $TOKEN\"",
        *(_traces_banner(jaeger) if background is None or background.up else
          ["", f"Traces: Jaeger is starting beside the shop (a first run builds it once, which takes minutes; "
               f"log {JAEGER_LOG.relative_to(ROOT)}); how to read a trace is printed when it is up."]),
        "",
        "Or a service directly with grpcurl (operator certificate; `make grpcurl` builds it into bin/ once):",
        f"  bin/grpcurl {tls} 127.0.0.1:{ports['accounts']} list",
        "",
        f"Demo OAuth2 client and admin credentials: {CREDENTIALS.relative_to(ROOT)} (mode 0600)",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


class BackgroundJaeger:
    """Jaeger, built (once, on a first run: minutes of Go) and started beside the shop rather than
    before it, so the first request is answered without waiting for it. The processes export to its
    fixed OTLP port from the start; spans sent before it listens are dropped by their exporters."""

    def __init__(self, ports: JaegerPorts):
        self.jaeger = Jaeger(ports, log_path=JAEGER_LOG)
        self.failed: str | None = None
        self._stopping = threading.Event()
        # The shop's banner and Jaeger's part of it are printed once each, in that order.
        self._printing = threading.Lock()
        self._traces_pending = False  # the banner said Jaeger was starting
        self._thread = threading.Thread(target=self._run, name="jaeger", daemon=True)

    def env(self) -> dict[str, str]:
        """The OTEL_* variables that send a process's spans to Jaeger; spans leave every second
        rather than the SDK's 5 s, so a trace can be read at once."""
        return {**self.jaeger.exporter_env(),
                "OTEL_BSP_SCHEDULE_DELAY": os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "1000")}

    def start(self) -> None:
        self._thread.start()

    @property
    def up(self) -> bool:
        return self.jaeger.started_in is not None

    def exited(self) -> bool:
        """Started, then stopped running (the shop stops too)."""
        return self.up and not self.jaeger.running

    def _run(self) -> None:
        try:
            self.jaeger.start()
        except RuntimeError as error:
            self.failed = str(error)
            print(f"Jaeger did not start; the shop runs without traces: {error}", file=sys.stderr, flush=True)
            return
        if self._stopping.is_set():  # the shop stopped while Jaeger was starting
            self.jaeger.stop()
            return
        with self._printing:
            if self._traces_pending:  # the banner said Jaeger was starting: say how to read traces now
                print("\n".join(_traces_banner(self.jaeger)), flush=True)

    def show(self, banner: Callable[[], str]) -> None:
        """Prints the shop's banner, which covers traces if Jaeger is up; if not, Jaeger's part
        follows when it is."""
        with self._printing:
            print(banner(), flush=True)
            self._traces_pending = not self.up

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=1)  # a build still running is left to finish into its cache
        if self.jaeger.running:
            self.jaeger.stop()


def main() -> int:
    write_dev_pki(PKI, TRUST_DOMAIN, WORKLOADS)
    if "--pki-only" in sys.argv[1:]:  # make pki
        print(f"dev certificates for {', '.join(WORKLOADS)} in {PKI.relative_to(ROOT)}")
        return 0
    try:
        jaeger_ports = _jaeger_ports()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    DATA.mkdir(parents=True, exist_ok=True)
    ports = _ports()
    subprocess.run([sys.executable, "-m", "services.accounts.manage", "seed-demo", "--out", str(CREDENTIALS),
                    "--storefront-redirect-uri", f"https://127.0.0.1:{EDGE_PORT}/shop/"],
                   env=_service_env("accounts", ports["accounts"]), check=True, cwd=ROOT)
    subprocess.run([sys.executable, "-m", "services.catalog.manage", "seed-demo"],
                   env=_service_env("catalog", ports["catalog"]), check=True, cwd=ROOT)
    children: list[subprocess.Popen] = []
    jaeger = BackgroundJaeger(jaeger_ports) if jaeger_ports else None
    telemetry = jaeger.env() if jaeger else {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    try:
        if jaeger is not None:
            jaeger.start()
        for workload in REGISTRY.services:
            name = workload.name
            children.append(subprocess.Popen([sys.executable, "-m", workload.module],
                                             env=_service_env(name, ports[name], telemetry), cwd=ROOT))
            if not _wait(functools.partial(_grpc_serving, ports[name]), children[-1]):
                print(f"{name} did not become SERVING on port {ports[name]}", file=sys.stderr)
                return 1
        children.append(subprocess.Popen([sys.executable, "-m", "edge"], env=_edge_env(ports, telemetry), cwd=ROOT))
        if not _wait(_edge_ready, children[-1]):
            print(f"the edge did not become ready on port {EDGE_PORT}", file=sys.stderr)
            return 1
        if jaeger is not None:
            jaeger.show(lambda: _banner(ports, jaeger))
        else:
            print(_banner(ports, None), flush=True)
        while not stop and all(child.poll() is None for child in children) and not (jaeger and jaeger.exited()):
            time.sleep(0.5)
        if not stop:
            print("a process exited; stopping the others", file=sys.stderr)
        return 0 if stop else 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        if jaeger is not None:  # last, once every process has sent its final spans
            jaeger.stop()


if __name__ == "__main__":
    sys.exit(main())
