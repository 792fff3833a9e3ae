"""Edge configuration from the environment (or a mapping, for tests), validated at start.

    EDGE_UPSTREAMS      pkg.Service=host:port,...   which services to expose, and where they run
                        (a target may list replicas: pkg.Service=ipv4:10.0.0.1:50052,10.0.0.2:50052)
    JWKS_METHOD         /pkg.Service/Method         the RPC that returns the token signing keys
    OAUTH_TOKEN_METHOD  /pkg.Service/Method         RFC 6749 token endpoint (optional)
    OAUTH_REVOKE_METHOD /pkg.Service/Method         RFC 7009 revocation endpoint (optional)
    TOKEN_ISSUER, TOKEN_AUDIENCE                    what access tokens must say
    EDGE_DEADLINE_SECONDS (10), EDGE_MAX_BODY_BYTES (65536)
    TLS_DIR or TLS_CA_FILE/TLS_CERT_FILE/TLS_KEY_FILE   the edge's workload certificate
    EDGE_REALM ("api"), EDGE_API_TITLE ("API")          names shown to clients (WWW-Authenticate, /docs)
    EDGE_METRICS_PORT (off), EDGE_METRICS_HOST (127.0.0.1)  Prometheus /metrics, apart from the public port
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from runtime.settings import ConfigError, Env, TelemetrySettings, TlsFiles
from runtime.tokens import VerifierSettings


def _printable(env: Env, name: str, default: str) -> str:
    value = env.str(name, default)
    if len(value) > 64 or not value.isprintable() or '"' in value:
        raise ConfigError(f"{name} must be at most 64 printable characters without quotes, got {value!r}")
    return value


@dataclass(frozen=True)
class EdgeConfig:
    upstreams: dict[str, str]  # service full name -> target
    tls: TlsFiles
    verifier: VerifierSettings
    jwks_method: str
    token_method: str
    revoke_method: str
    deadline_seconds: float
    max_body_bytes: int
    telemetry: TelemetrySettings
    realm: str = "api"
    api_title: str = "API"
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "EdgeConfig":
        env = Env(environ)
        upstreams: dict[str, str] = {}
        last = None
        for entry in env.list("EDGE_UPSTREAMS"):
            service, _, target = entry.partition("=")
            if not target and last is not None:
                # "ipv4:host:a,host:b" lists several replicas; its commas are not entry separators.
                upstreams[last] += "," + entry
                continue
            if not service.strip() or not target.strip():
                raise ConfigError(f"EDGE_UPSTREAMS entries must be Service=target, got {entry!r}")
            last = service.strip()
            upstreams[last] = target.strip()
        return cls(
            upstreams=upstreams,
            tls=TlsFiles.from_env(env, env.str("TLS_DIR", ".dev/pki"), "edge"),
            verifier=VerifierSettings.from_env(env),
            jwks_method=env.method("JWKS_METHOD"),
            token_method=env.method("OAUTH_TOKEN_METHOD", ""),
            revoke_method=env.method("OAUTH_REVOKE_METHOD", ""),
            deadline_seconds=env.float("EDGE_DEADLINE_SECONDS", 10.0, minimum=0.1),
            max_body_bytes=env.int("EDGE_MAX_BODY_BYTES", 64 * 1024, minimum=1024),
            telemetry=TelemetrySettings.from_env(env, "edge"),
            realm=_printable(env, "EDGE_REALM", "api"),
            api_title=_printable(env, "EDGE_API_TITLE", "API"),
            metrics_port=env.int("EDGE_METRICS_PORT", 0, minimum=0, maximum=65535) or None,
            metrics_host=env.str("EDGE_METRICS_HOST", "127.0.0.1"),
        )
