"""Configuration fails fast, with the name of the variable that is wrong."""

import pytest

from runtime.settings import ConfigError, ServerSettings


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
