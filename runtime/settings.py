"""Configuration from the environment, read once per process and validated at start.

Every problem names the variable, so a misconfigured deployment fails at once with a
message an operator can act on, instead of failing on the first request.

    settings = ServerSettings.from_env("accounts", default_port=50051)
"""

from __future__ import annotations

import os
import pathlib
import re
from dataclasses import dataclass, field
from typing import Mapping

_TRUST_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


class Env:
    """Typed, validated reads from an environment mapping (os.environ by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self._environ = os.environ if environ is None else environ

    def str(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            raise ConfigError(f"{name} is required but not set")
        return default

    def int(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value

    def float(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.str(name, default).lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def list(self, name: str, default: str | None = None) -> tuple[str, ...]:
        return tuple(item.strip() for item in self.str(name, default).split(",") if item.strip())

    def file(self, name: str, default: str | None = None) -> pathlib.Path:
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
    def from_env(cls, env: Env, default_dir: str | None = None, workload: str | None = None) -> "TlsFiles":
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
    # None lets the driver negotiate (current Cassandra); 3 for Cassandra 2.1.
    protocol_version: int | None
    consistency: str
    serial_consistency: str
    local_dc: str | None
    replication_factor: int

    @classmethod
    def from_env(cls, env: Env, default_keyspace: str) -> "CassandraSettings":
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


@dataclass(frozen=True)
class ServerSettings:
    """What every gRPC service needs: where to listen, its identity, and which store to use."""

    service: str
    host: str
    port: int
    tls: TlsFiles
    trust_domain: str
    grace_seconds: float
    store: str  # "embedded" or "cassandra"
    sqlite_path: str
    cassandra: CassandraSettings | None
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, service: str, default_port: int, environ: Mapping[str, str] | None = None) -> "ServerSettings":
        env = Env(environ)
        trust_domain = env.str("TRUST_DOMAIN", "shop.local")
        if not _TRUST_DOMAIN.match(trust_domain):
            raise ConfigError(f"TRUST_DOMAIN must be a lowercase DNS-like name, got {trust_domain!r}")
        store = env.choice("STORE", "embedded", ("embedded", "cassandra"))
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
            extra=dict(os.environ if environ is None else environ),
        )

    @property
    def env(self) -> Env:
        """Typed access to the service's own variables, validated the same way."""
        return Env(self.extra)
