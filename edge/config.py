"""Edge configuration from the environment (or a mapping, for tests), validated at start.

    EDGE_UPSTREAMS      pkg.Service=host:port,...   which services to expose, and where they run
                        (a target may list replicas: pkg.Service=ipv4:10.0.0.1:50052,10.0.0.2:50052)
    JWKS_METHOD         /pkg.Service/Method         the RPC that returns the token signing keys
    OAUTH_TOKEN_METHOD  /pkg.Service/Method         RFC 6749 token endpoint (optional)
    OAUTH_REVOKE_METHOD /pkg.Service/Method         RFC 7009 revocation endpoint (optional)
    OAUTH_AUTHORIZE_METHOD /pkg.Service/Method      RFC 6749 4.1 authorization endpoint and sign-in page (optional)
    OAUTH_METADATA_METHOD  /pkg.Service/Method      the grants, response types and PKCE methods the
                                                    RFC 8414 metadata lists (optional)
    EDGE_SITE_DIR (unset), EDGE_SITE_PATH (/shop)   a directory of static files (a browser application)
    TOKEN_ISSUER, TOKEN_AUDIENCE                    what access tokens must say
    EDGE_DEADLINE_SECONDS (10), EDGE_MAX_BODY_BYTES (65536)
    TLS_DIR or TLS_CA_FILE/TLS_CERT_FILE/TLS_KEY_FILE   the edge's workload certificate
    EDGE_REALM ("api"), EDGE_API_TITLE ("API")          names shown to clients (WWW-Authenticate, /docs)

How the process serves HTTP (EdgeServerSettings; edge/gunicorn_conf.py reads this part alone):

    EDGE_HOST (127.0.0.1), EDGE_PORT (8080)             where gunicorn listens (0: a free port)
    EDGE_WORKERS (2), EDGE_THREADS (8)                  worker processes, threads per worker
    EDGE_TLS_CERT_FILE, EDGE_TLS_KEY_FILE (unset)       serve HTTPS with these PEM files (both or neither)
    EDGE_ACCESS_LOG (unset)                             gunicorn's own access log as well ("-": stdout)
    EDGE_MAX_QUEUE_MS (500)                             a request that waited longer for a worker thread
                                                        is answered 503 at once (0: never); edge/admission.py
    EDGE_METRICS_PORT (off), EDGE_METRICS_HOST (127.0.0.1)  Prometheus /metrics, apart from the public port
    OTEL_* , LOG_LEVEL                                  telemetry (runtime.settings.TelemetrySettings)
"""

from __future__ import annotations

import ipaddress
import pathlib
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.settings import ConfigError, Env, TelemetrySettings, TlsFiles
from runtime.tokens import VerifierSettings


def _printable(env: Env, name: str, default: str) -> str:
    value = env.str(name, default)
    if len(value) > 64 or not value.isprintable() or '"' in value:
        raise ConfigError(f"{name} must be at most 64 printable characters without quotes, got {value!r}")
    return value


def _networks(name: str, values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of a comma-separated list (CIDR, or one address)."""
    try:
        return tuple(ipaddress.ip_network(value, strict=False) for value in values)
    except ValueError as error:
        raise ConfigError(f"{name} must list networks like 10.0.0.0/8 or 192.0.2.7, comma-separated: {error}") from None


def _https_files(env: Env) -> tuple[pathlib.Path | None, pathlib.Path | None]:
    """The edge's public certificate and key, loaded once here so a bad pair stops the start."""
    cert, key = env.str("EDGE_TLS_CERT_FILE", ""), env.str("EDGE_TLS_KEY_FILE", "")
    if bool(cert) != bool(key):
        raise ConfigError("set both EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE, or neither")
    if not cert:
        return None, None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"EDGE_TLS_CERT_FILE/EDGE_TLS_KEY_FILE ({cert}, {key}): {error}") from None
    return pathlib.Path(cert), pathlib.Path(key)


@dataclass(frozen=True)
class EdgeServerSettings:
    """How the edge process serves HTTP: gunicorn, admission control, metrics port, telemetry. Nothing
    here depends on the services behind the edge, so the gunicorn master reads this part alone (and
    the same gunicorn settings serve bench/bare_app.py)."""

    host: str
    port: int
    workers: int
    threads: int
    tls_cert_file: pathlib.Path | None
    tls_key_file: pathlib.Path | None
    access_log: str | None  # None: only the app's JSON access log
    max_queue_seconds: float  # 0: never shed
    header_timeout_seconds: float  # a connection's TLS handshake and request head, from its arrival
    metrics_port: int | None
    metrics_host: str
    telemetry: TelemetrySettings
    # Callers whose W3C trace context (and so its "sampled" flag) the edge continues; any other
    # caller's request starts a trace of its own, linked to theirs (observability/http.py).
    trace_trusted_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_env(cls, env: Env) -> EdgeServerSettings:
        cert, key = _https_files(env)
        return cls(
            host=env.str("EDGE_HOST", "127.0.0.1"),
            port=env.int("EDGE_PORT", 8080, minimum=0, maximum=65535),
            workers=env.int("EDGE_WORKERS", 2, minimum=1, maximum=64),
            threads=env.int("EDGE_THREADS", 8, minimum=1, maximum=256),
            tls_cert_file=cert,
            tls_key_file=key,
            access_log=env.str("EDGE_ACCESS_LOG", "") or None,
            max_queue_seconds=env.int("EDGE_MAX_QUEUE_MS", 500, minimum=0, maximum=60_000) / 1000,
            header_timeout_seconds=env.float("EDGE_HEADER_TIMEOUT_SECONDS", 10.0, minimum=0.5),
            metrics_port=env.int("EDGE_METRICS_PORT", 0, minimum=0, maximum=65535) or None,
            metrics_host=env.str("EDGE_METRICS_HOST", "127.0.0.1"),
            telemetry=TelemetrySettings.from_env(env, "edge"),
            trace_trusted_networks=_networks("EDGE_TRACE_TRUSTED_NETWORKS", env.list("EDGE_TRACE_TRUSTED_NETWORKS", "")),
        )


@dataclass(frozen=True)
class EdgeConfig:
    upstreams: dict[str, str]  # service full name -> target
    tls: TlsFiles
    verifier: VerifierSettings
    jwks_method: str
    token_method: str
    revoke_method: str
    authorize_method: str
    metadata_method: str
    deadline_seconds: float
    max_body_bytes: int
    server: EdgeServerSettings
    realm: str = "api"
    api_title: str = "API"
    site_dir: pathlib.Path | None = None
    site_path: str = "/shop"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EdgeConfig:
        env = Env(environ)
        server = EdgeServerSettings.from_env(env)  # first: how the process runs is checked before what it serves
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
            authorize_method=env.method("OAUTH_AUTHORIZE_METHOD", ""),
            metadata_method=env.method("OAUTH_METADATA_METHOD", ""),
            deadline_seconds=env.float("EDGE_DEADLINE_SECONDS", 10.0, minimum=0.1),
            max_body_bytes=env.int("EDGE_MAX_BODY_BYTES", 64 * 1024, minimum=1024),
            server=server,
            realm=_printable(env, "EDGE_REALM", "api"),
            api_title=_printable(env, "EDGE_API_TITLE", "API"),
            site_dir=_site_dir(env),
            site_path=_site_path(env),
        )


def _site_dir(env: Env) -> pathlib.Path | None:
    value = env.str("EDGE_SITE_DIR", "")
    if value and not (pathlib.Path(value) / "index.html").is_file():
        raise ConfigError(f"EDGE_SITE_DIR must be a directory with an index.html, got {value!r}")
    return pathlib.Path(value) if value else None


def _site_path(env: Env) -> str:
    value = env.str("EDGE_SITE_PATH", "/shop")
    if not re.fullmatch(r"(/[a-z0-9-]+)+", value) or value.startswith(("/v1", "/oauth2", "/.well-known")):
        raise ConfigError(f"EDGE_SITE_PATH must be a path such as /shop, apart from the API's, got {value!r}")
    return value
