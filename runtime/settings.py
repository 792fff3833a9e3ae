"""Configuration from the environment, read once per process and validated at start.

Every problem names the variable, so a misconfigured deployment fails at once with a
message an operator can act on, instead of failing on the first request.

    settings = ServerSettings.from_env("inventory", default_port=50051)
"""

from __future__ import annotations

import builtins
import os
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

_TRUST_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


class Env:
    """Typed, validated reads from an environment mapping (os.environ by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self._environ = os.environ if environ is None else environ

    # From here on `str` in this class body is this method, so the signatures below say builtins.str.
    def str(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            raise ConfigError(f"{name} is required but not set")
        return default

    def int(self, name: builtins.str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self._number(name, builtins.int, "an integer")
        if value is None:
            return default  # unset: the default, whatever the bounds (-1 may mean "off")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value

    def float(self, name: builtins.str, default: float, *, minimum: float = 0.0) -> float:
        value = self._number(name, builtins.float, "a number")
        if value is None:
            return default
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def _number(self, name: builtins.str, parse, kind: builtins.str):
        """The variable parsed with `parse` (int or float); None when unset or blank."""
        raw = self._environ.get(name, "").strip()
        if not raw:
            return None
        try:
            return parse(raw)
        except ValueError:
            raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None

    def choice(self, name: builtins.str, default: builtins.str, choices: tuple[builtins.str, ...]) -> builtins.str:
        value = self.str(name, default).lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def method(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str:
        """A gRPC method name, "/package.Service/Method" ("" when optional and unset)."""
        value = self.str(name, default)
        if value and not re.fullmatch(r"/[A-Za-z_][\w.]*\.[A-Za-z_]\w*/[A-Za-z_]\w*", value):
            raise ConfigError(f"{name} must look like /package.Service/Method, got {value!r}")
        return value

    def list(self, name: builtins.str, default: builtins.str | None = None) -> tuple[builtins.str, ...]:
        return tuple(item.strip() for item in self.str(name, default).split(",") if item.strip())

    def file(self, name: builtins.str, default: builtins.str | None = None) -> pathlib.Path:
        path = pathlib.Path(self.str(name, default))
        if not path.is_file():
            raise ConfigError(f"{name} points to {str(path)!r}, which is not a readable file")
        return path


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one workload: the CA that signs every workload, its certificate and key."""

    ca: pathlib.Path
    cert: pathlib.Path
    key: pathlib.Path

    @classmethod
    def from_env(cls, env: Env, default_dir: str | None = None, workload: str | None = None) -> TlsFiles:
        def default(name: str) -> str | None:
            return str(pathlib.Path(default_dir) / name) if default_dir else None

        return cls(
            ca=env.file("TLS_CA_FILE", default("ca.pem")),
            cert=env.file("TLS_CERT_FILE", default(f"{workload}.pem")),
            key=env.file("TLS_KEY_FILE", default(f"{workload}.key")),
        )


@dataclass(frozen=True)
class CassandraSettings:
    contact_points: tuple[str, ...]
    keyspace: str
    # None lets the driver negotiate (v5 with Cassandra 4.0 and later); a number pins that version.
    protocol_version: int | None
    consistency: str
    serial_consistency: str
    local_dc: str | None
    replication_factor: int

    @classmethod
    def from_env(cls, env: Env, default_keyspace: str) -> CassandraSettings:
        version = env.int("CASSANDRA_PROTOCOL_VERSION", 0, minimum=0, maximum=6)
        keyspace = env.str("CASSANDRA_KEYSPACE", default_keyspace)
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,47}", keyspace):
            raise ConfigError(f"CASSANDRA_KEYSPACE must be lowercase letters, digits and _, got {keyspace!r}")
        return cls(
            contact_points=env.list("CASSANDRA_CONTACT_POINTS", "127.0.0.1:9042"),
            keyspace=keyspace,
            protocol_version=version or None,
            consistency=env.choice("CASSANDRA_CONSISTENCY", "local_quorum", ("one", "local_one", "quorum", "local_quorum", "all")),
            serial_consistency=env.choice("CASSANDRA_SERIAL_CONSISTENCY", "serial", ("serial", "local_serial")),
            local_dc=env.str("CASSANDRA_LOCAL_DC", "") or None,
            replication_factor=env.int("CASSANDRA_REPLICATION_FACTOR", 1, minimum=1, maximum=9),
        )


_SAMPLERS = ("parentbased_traceidratio", "traceidratio", "parentbased_always_on", "always_on",
             "parentbased_always_off", "always_off")


@dataclass(frozen=True)
class TelemetrySettings:
    """The standard OpenTelemetry variables this project honours, checked at start. The OTLP exporter
    reads its own endpoint, headers and TLS variables (OTEL_EXPORTER_OTLP_*) when it is created."""

    service_name: str
    service_version: str
    environment: str
    sampler: str
    sampler_ratio: float
    exporter_protocol: str | None  # None: no endpoint configured, nothing is exported
    log_level: str
    log_format: str = "json"  # "text": one readable line per record, for a terminal

    @classmethod
    def from_env(cls, env: Env, service: str) -> TelemetrySettings:
        ratio = env.float("OTEL_TRACES_SAMPLER_ARG", 1.0)
        if ratio > 1.0:
            raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG must be between 0 and 1, got {ratio}")
        endpoint = env.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "") or env.str("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        protocol = env.choice("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                              env.choice("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", ("grpc", "http/protobuf")),
                              ("grpc", "http/protobuf"))
        return cls(
            service_name=env.str("OTEL_SERVICE_NAME", service),
            service_version=env.str("SERVICE_VERSION", "0.1.0"),
            environment=env.str("DEPLOYMENT_ENVIRONMENT", "dev"),
            sampler=env.choice("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", _SAMPLERS),
            sampler_ratio=ratio,
            exporter_protocol=protocol if endpoint else None,
            log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
            log_format=env.choice("LOG_FORMAT", "json", ("json", "text")),
        )


@dataclass(frozen=True)
class ServerSettings:
    """What every gRPC service needs: where to listen, its identity, its store, its telemetry."""

    service: str
    host: str
    port: int
    tls: TlsFiles
    trust_domain: str
    grace_seconds: float
    store: str  # "embedded" or "cassandra"
    sqlite_path: str
    cassandra: CassandraSettings | None
    telemetry: TelemetrySettings
    health_port: int | None = None  # grpc.health alone, without TLS, for probes that cannot do mTLS
    metrics_port: int | None = None  # Prometheus /metrics over HTTP
    metrics_host: str = "127.0.0.1"
    max_workers: int = 16  # calls served at once; more wait for a thread, up to max_queued_calls
    max_queued_calls: int = 64  # beyond workers + queue a call is refused at once (RESOURCE_EXHAUSTED)
    max_connection_age_seconds: float = 10.0  # clients re-resolve names when a connection ends (bench/replicas.py)
    drain_seconds: float = 1.0  # at SIGTERM, time for callers to stop routing here before calls are refused

    @classmethod
    def from_env(cls, service: str, default_port: int, environ: Mapping[str, str] | None = None) -> ServerSettings:
        env = Env(environ)
        trust_domain = env.str("TRUST_DOMAIN")
        if not _TRUST_DOMAIN.match(trust_domain):
            raise ConfigError(f"TRUST_DOMAIN must be a lowercase DNS-like name, got {trust_domain!r}")
        store = env.choice("STORE", "embedded", ("embedded", "cassandra"))
        health_port = env.int("HEALTH_PORT", -1, minimum=0, maximum=65535)
        metrics_port = env.int("METRICS_PORT", 0, minimum=0, maximum=65535)
        return cls(
            service=service,
            host=env.str("GRPC_HOST", "127.0.0.1"),
            port=env.int("GRPC_PORT", default_port, minimum=0, maximum=65535),
            tls=TlsFiles.from_env(env, env.str("TLS_DIR", ".dev/pki"), service),
            trust_domain=trust_domain,
            grace_seconds=env.float("SHUTDOWN_GRACE_SECONDS", 10.0),
            store=store,
            sqlite_path=env.str("SQLITE_PATH", f".dev/data/{service}.sqlite3"),
            cassandra=CassandraSettings.from_env(env, default_keyspace=service) if store == "cassandra" else None,
            telemetry=TelemetrySettings.from_env(env, service),
            health_port=None if health_port < 0 else health_port,
            metrics_port=metrics_port or None,
            metrics_host=env.str("METRICS_HOST", "127.0.0.1"),
            max_workers=env.int("GRPC_MAX_WORKERS", 16, minimum=1, maximum=1024),
            max_queued_calls=env.int("GRPC_MAX_QUEUED_CALLS", 64, minimum=0, maximum=100_000),
            max_connection_age_seconds=env.float("GRPC_MAX_CONNECTION_AGE_SECONDS", 10.0, minimum=1.0),
            drain_seconds=env.float("SHUTDOWN_DRAIN_SECONDS", 1.0),
        )


@dataclass(frozen=True)
class KeySource:
    """Where a service fetches the public keys that verify forwarded tokens: an RPC and its target."""

    method: str  # "/package.Service/Method"
    target: str

    @classmethod
    def from_env(cls, env: Env) -> KeySource:
        from runtime.descriptors import load_method

        method = env.method("JWKS_METHOD")
        try:
            load_method(method)
        except LookupError as error:
            raise ConfigError(f"JWKS_METHOD: {error}") from None
        return cls(method=method, target=env.str("JWKS_TARGET"))
