"""Jaeger v2 as a child process: the binary built from tools/go/jaeger, with our config.

    with Jaeger(JaegerPorts.free(), log_path=tmp / "jaeger.log") as jaeger:   # tests: free ports
        env = jaeger.exporter_env()        # OTEL_EXPORTER_OTLP_* that point a process at it
        spans = jaeger.query.trace(trace_id)

observability/jaeger/config.yaml reads every listen address from JAEGER_* variables (the names
and Jaeger's standard ports are in PORT_VARIABLES, checked against the config by a unit test);
`start` waits until the health endpoint says healthy and the query API answers, `stop` signals
the process it started, by PID.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runtime.settings import ConfigError, Env
from tools import processes
from tools.gotools import ensure
from tools.jaeger.query import QueryClient
from tools.ports import bindable, free_ports

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = ROOT / "observability" / "jaeger" / "config.yaml"
# JaegerPorts field -> (the variable config.yaml reads, Jaeger's standard port)
PORT_VARIABLES = {
    "otlp_grpc": ("JAEGER_OTLP_GRPC_PORT", 4317),
    "otlp_http": ("JAEGER_OTLP_HTTP_PORT", 4318),
    "query_http": ("JAEGER_QUERY_HTTP_PORT", 16686),
    "query_grpc": ("JAEGER_QUERY_GRPC_PORT", 16685),
    "health": ("JAEGER_HEALTH_PORT", 13133),
    "metrics": ("JAEGER_METRICS_PORT", 8888),
}
METRICS_OFF = "none"  # JAEGER_METRICS_LEVEL that turns Jaeger's own metrics (and their listener) off
HOST = "127.0.0.1"


@dataclass(frozen=True)
class JaegerPorts:
    """Where one Jaeger listens, all on 127.0.0.1. `metrics` None: Jaeger's own metrics are off."""

    otlp_grpc: int = 4317
    otlp_http: int = 4318
    query_http: int = 16686
    query_grpc: int = 16685
    health: int = 13133
    metrics: int | None = 8888

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> JaegerPorts:
        """The JAEGER_* port settings (defaults: Jaeger's standard ports), checked: a bad or repeated
        port raises ConfigError naming the variable."""
        env = Env(environ)
        chosen = cls(**{field: env.int(variable, default, minimum=1, maximum=65535)
                        for field, (variable, default) in PORT_VARIABLES.items()})
        if env.str("JAEGER_METRICS_LEVEL", "basic").lower() == METRICS_OFF:
            chosen = dataclasses.replace(chosen, metrics=None)
        seen: dict[int, str] = {}
        for field, port in chosen.in_use().items():
            if port in seen:
                raise ConfigError(f"{PORT_VARIABLES[field][0]} repeats {PORT_VARIABLES[seen[port]][0]} ({port})")
            seen[port] = field
        return chosen

    @classmethod
    def free(cls) -> JaegerPorts:
        """Ports free on 127.0.0.1 right now, metrics off: for tests (Jaeger cannot report a port 0 back)."""
        otlp_grpc, otlp_http, query_http, query_grpc, health = free_ports(5, (HOST,))
        return cls(otlp_grpc, otlp_http, query_http, query_grpc, health, metrics=None)

    def in_use(self) -> dict[str, int]:
        """Every port this Jaeger opens, by field."""
        return {field: port for field, port in dataclasses.asdict(self).items() if port is not None}

    def env(self) -> dict[str, str]:
        """The variables config.yaml reads, for these ports."""
        env = {PORT_VARIABLES[field][0]: str(port) for field, port in self.in_use().items()}
        if self.metrics is None:
            env["JAEGER_METRICS_LEVEL"] = METRICS_OFF
        return {"JAEGER_LISTEN_HOST": HOST, **env}


class Jaeger:
    """One Jaeger process with our config on `ports`; its log goes to `log_path` (or is dropped)."""

    def __init__(self, ports: JaegerPorts | None = None, *, log_path: pathlib.Path | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.ports = ports or JaegerPorts()
        self.log_path = log_path
        self._clock = clock
        self._process: subprocess.Popen | None = None
        self.started_in: float | None = None  # seconds from launch to healthy, once started
        self.query = QueryClient(self.query_url)

    @property
    def query_url(self) -> str:
        return f"http://{HOST}:{self.ports.query_http}"

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"http://{HOST}:{self.ports.otlp_grpc}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exporter_env(self) -> dict[str, str]:
        """The standard OTEL_EXPORTER_OTLP_* variables that send a process's spans here (OTLP/gRPC)."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_grpc_endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_INSECURE": "true"}

    def start(self, timeout: float = 30) -> Jaeger:
        """Launches the binary (built once if needed) and waits until it is healthy and answers queries."""
        binary = ensure("jaeger")
        for field, port in self.ports.in_use().items():
            if not bindable(HOST, port, reuse_address=True):
                raise RuntimeError(f"port {port} ({PORT_VARIABLES[field][0]}) is in use on {HOST}")
        # The OTEL_* settings of our processes are meant for them, not for Jaeger's own telemetry.
        env = {**{name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}, **self.ports.env()}
        launched = self._clock()
        with open(self.log_path or os.devnull, "ab") as log:  # the child keeps its own copy of the descriptor
            self._process = subprocess.Popen([str(binary), f"--config=file:{CONFIG}"], env=env, stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_healthy(timeout)
        self.started_in = self._clock() - launched
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = self._clock() + timeout
        while True:
            healthy = self._healthy() and self.query.answers()
            if not self.running:  # checked after the probes: a Jaeger already on these ports answers them too
                self._fail(f"Jaeger exited with code {self._process.returncode if self._process else None}")
            if healthy:
                return
            if self._clock() > deadline:
                self._fail(f"Jaeger was not healthy within {timeout:.0f}s")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.ports.health}/status", timeout=2) as reply:
                return json.load(reply).get("healthy") is True
        except (OSError, ValueError):  # not listening yet, or an answer that is not the status document
            return False

    def _fail(self, message: str) -> None:
        self.stop()
        raise RuntimeError(f"{message}\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log kept)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def rss_bytes(self) -> int:
        """Resident memory of the process now (Linux /proc)."""
        for line in pathlib.Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS for Jaeger's process")

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM to the process this object started (by PID), SIGKILL if it lingers; its exit code."""
        return None if self._process is None else processes.stop(self._process, timeout=timeout)

    def __enter__(self) -> Jaeger:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

