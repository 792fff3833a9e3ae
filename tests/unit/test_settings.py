"""Configuration fails fast, with the name of the variable that is wrong."""

import os
import pathlib
import subprocess
import sys

import pytest

from edge.config import EdgeConfig, EdgeServerSettings
from runtime import pki
from runtime.settings import ConfigError, Env, ServerSettings


@pytest.fixture
def tls_dir(tmp_path):
    for name in ("ca.pem", "accounts.pem", "accounts.key"):
        (tmp_path / name).write_text("placeholder")
    return tmp_path


def load(tls_dir, **env):
    return ServerSettings.from_env("accounts", 50051, {"TLS_DIR": str(tls_dir), "TRUST_DOMAIN": "shop.local", **env})


def test_defaults_are_the_embedded_store_on_the_service_port(tls_dir):
    settings = load(tls_dir)
    assert (settings.port, settings.store, settings.cassandra) == (50051, "embedded", None)


@pytest.mark.parametrize("env, variable", [
    ({"GRPC_PORT": "http"}, "GRPC_PORT"),
    ({"GRPC_PORT": "70000"}, "GRPC_PORT"),
    ({"STORE": "postgres"}, "STORE"),
    ({"TRUST_DOMAIN": "Not A Domain"}, "TRUST_DOMAIN"),
    ({"TRUST_DOMAIN": ""}, "TRUST_DOMAIN"),
    ({"OTEL_TRACES_SAMPLER_ARG": "lots"}, "OTEL_TRACES_SAMPLER_ARG"),
    ({"OTEL_TRACES_SAMPLER_ARG": "1.5"}, "OTEL_TRACES_SAMPLER_ARG"),
    ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
    ({"HEALTH_PORT": "-3"}, "HEALTH_PORT"),
    ({"GRPC_MAX_WORKERS": "0"}, "GRPC_MAX_WORKERS"),
    ({"TLS_CERT_FILE": "/nonexistent.pem"}, "TLS_CERT_FILE"),
    ({"SHUTDOWN_GRACE_SECONDS": "soon"}, "SHUTDOWN_GRACE_SECONDS"),
    ({"STORE": "cassandra", "CASSANDRA_CONSISTENCY": "most"}, "CASSANDRA_CONSISTENCY"),
    ({"STORE": "cassandra", "CASSANDRA_KEYSPACE": "drop table"}, "CASSANDRA_KEYSPACE"),
])
def test_bad_values_name_the_variable(tls_dir, env, variable):
    with pytest.raises(ConfigError, match=variable):
        load(tls_dir, **env)


def test_missing_tls_files_name_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="TLS_CA_FILE"):
        ServerSettings.from_env("accounts", 50051, {"TLS_DIR": str(tmp_path), "TRUST_DOMAIN": "shop.local"})


@pytest.mark.parametrize("value, expected", [("", None), ("3", 3), ("4", 4)])
def test_cassandra_protocol_version_is_negotiated_unless_set(tls_dir, value, expected):
    settings = load(tls_dir, STORE="cassandra", CASSANDRA_PROTOCOL_VERSION=value)
    assert settings.cassandra.protocol_version == expected
    assert settings.cassandra.consistency == "local_quorum"


# --- the edge: what it serves (EdgeConfig) and how it is served (EdgeServerSettings, read by gunicorn) --------

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def edge_env(tmp_path):
    for name in ("ca.pem", "edge.pem", "edge.key"):
        (tmp_path / name).write_text("placeholder")
    return {"TLS_DIR": str(tmp_path), "EDGE_UPSTREAMS": "pkg.v1.Service=127.0.0.1:50051",
            "JWKS_METHOD": "/pkg.v1.Service/Keys", "TOKEN_ISSUER": "https://issuer.example", "TOKEN_AUDIENCE": "api"}


def test_edge_server_defaults_are_two_workers_of_eight_threads_on_loopback_shedding_after_half_a_second(edge_env):
    server = EdgeConfig.from_env(edge_env).server
    assert (server.host, server.port, server.workers, server.threads) == ("127.0.0.1", 8080, 2, 8)
    assert (server.tls_cert_file, server.access_log, server.max_queue_seconds, server.metrics_port) == (None, None, 0.5, None)
    assert server.telemetry.service_name == "edge"


def test_edge_server_settings_are_read_from_their_variables(edge_env, tmp_path):
    pair = pki.issue_certificate(pki.create_ca("Test CA"), "edge", "shop.local")
    (tmp_path / "https.pem").write_bytes(pair.cert_pem)
    (tmp_path / "https.key").write_bytes(pair.key_pem)
    server = EdgeServerSettings.from_env(Env({
        "EDGE_HOST": "0.0.0.0", "EDGE_PORT": "0", "EDGE_WORKERS": "4", "EDGE_THREADS": "16", "EDGE_ACCESS_LOG": "-",
        "EDGE_MAX_QUEUE_MS": "0", "EDGE_METRICS_PORT": "9100", "EDGE_TLS_CERT_FILE": str(tmp_path / "https.pem"),
        "EDGE_TLS_KEY_FILE": str(tmp_path / "https.key")}))
    assert (server.host, server.port, server.workers, server.threads, server.access_log) == ("0.0.0.0", 0, 4, 16, "-")
    assert (server.max_queue_seconds, server.metrics_port, server.tls_key_file) == (0.0, 9100, tmp_path / "https.key")


def test_the_edge_trusts_no_callers_trace_context_unless_told():
    assert EdgeServerSettings.from_env(Env({})).trace_trusted_networks == ()
    trusted = EdgeServerSettings.from_env(Env({"EDGE_TRACE_TRUSTED_NETWORKS": "10.1.0.0/16, 192.0.2.7,::1"}))
    assert [str(n) for n in trusted.trace_trusted_networks] == ["10.1.0.0/16", "192.0.2.7/32", "::1/128"]


@pytest.mark.parametrize("env, variable", [
    ({"EDGE_WORKERS": "abc"}, "EDGE_WORKERS"),
    ({"EDGE_WORKERS": "0"}, "EDGE_WORKERS"),
    ({"EDGE_THREADS": "0"}, "EDGE_THREADS"),
    ({"EDGE_THREADS": "many"}, "EDGE_THREADS"),
    ({"EDGE_PORT": "70000"}, "EDGE_PORT"),
    ({"EDGE_MAX_QUEUE_MS": "-1"}, "EDGE_MAX_QUEUE_MS"),
    ({"EDGE_MAX_QUEUE_MS": "0.5s"}, "EDGE_MAX_QUEUE_MS"),
    ({"EDGE_METRICS_PORT": "-1"}, "EDGE_METRICS_PORT"),
    ({"EDGE_TLS_CERT_FILE": "edge.pem"}, "EDGE_TLS_KEY_FILE"),
    ({"EDGE_TLS_CERT_FILE": "/nonexistent.pem", "EDGE_TLS_KEY_FILE": "/nonexistent.key"}, "EDGE_TLS_CERT_FILE"),
    ({"EDGE_DEADLINE_SECONDS": "0"}, "EDGE_DEADLINE_SECONDS"),
    ({"EDGE_UPSTREAMS": "no-target"}, "EDGE_UPSTREAMS"),
    ({"EDGE_TRACE_TRUSTED_NETWORKS": "10.0.0.0/33"}, "EDGE_TRACE_TRUSTED_NETWORKS"),
    ({"EDGE_TRACE_TRUSTED_NETWORKS": "localhost"}, "EDGE_TRACE_TRUSTED_NETWORKS"),
])
def test_bad_edge_values_name_the_variable(edge_env, env, variable):
    with pytest.raises(ConfigError, match=variable):
        EdgeConfig.from_env({**edge_env, **env})


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("variable, value", [("EDGE_WORKERS", "0"), ("EDGE_THREADS", "abc")])
def test_python_m_edge_stops_before_serving_with_the_variables_name_and_no_traceback(edge_env, variable, value):
    ran = _run(["-m", "edge"], {**edge_env, "EDGE_PORT": "0", variable: value})
    assert ran.returncode == 2 and f"edge: configuration error: {variable}" in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr and "Listening" not in ran.stderr


def test_gunicorn_with_the_edge_settings_stops_on_a_bad_value_too():
    """The same settings serve apps that are not the edge (bench/bare_app.py): checked when gunicorn loads them."""
    ran = _run(["-m", "gunicorn", "-c", "edge/gunicorn_conf.py", "bench.bare_app:app"], {"EDGE_PORT": "0", "EDGE_WORKERS": "-2"})
    assert ran.returncode != 0 and "edge: configuration error: EDGE_WORKERS" in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr
