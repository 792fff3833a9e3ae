"""Our Jaeger config takes every address from the environment, with Jaeger's standard ports, and
the launcher's settings are checked before anything starts."""

import re

import pytest
import yaml

from runtime.settings import ConfigError
from tools.jaeger import CONFIG, PORT_VARIABLES, JaegerPorts

TEXT = CONFIG.read_text()
CONFIG_DOC = yaml.safe_load(TEXT)
_ENDPOINT = re.compile(r"^\$\{env:JAEGER_LISTEN_HOST:-127\.0\.0\.1\}:\$\{env:(JAEGER_\w+_PORT):-(\d+)\}$")


def _endpoints(node, path=()):
    """(path, value) of every `endpoint` in the config."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "endpoint":
                yield ".".join(path), value
            else:
                yield from _endpoints(value, (*path, key))


def test_every_listener_reads_its_host_and_port_from_a_variable_with_the_standard_default():
    ports = {}
    for path, endpoint in _endpoints(CONFIG_DOC):
        found = _ENDPOINT.match(endpoint)
        assert found, (path, endpoint)
        ports[found.group(1)] = int(found.group(2))
    prometheus = CONFIG_DOC["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert prometheus["host"] == "${env:JAEGER_LISTEN_HOST:-127.0.0.1}"
    variable, default = re.fullmatch(r"\$\{env:(\w+):-(\d+)\}", prometheus["port"]).groups()
    ports[variable] = int(default)
    assert ports == dict(PORT_VARIABLES.values()), "the launcher's PORT_VARIABLES and the config name the same ports"


def test_jaeger_traces_into_memory_with_a_bound_and_never_traces_itself():
    extensions = CONFIG_DOC["extensions"]
    memory = extensions["jaeger_storage"]["backends"][extensions["jaeger_query"]["storage"]["traces"]]["memory"]
    assert re.fullmatch(r"\$\{env:JAEGER_MAX_TRACES:-\d+\}", memory["max_traces"])
    assert extensions["jaeger_query"]["enable_tracing"] is False
    assert CONFIG_DOC["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    assert CONFIG_DOC["service"]["telemetry"]["metrics"]["level"] == "${env:JAEGER_METRICS_LEVEL:-basic}"


def test_the_standard_ports_are_the_default_settings():
    assert JaegerPorts.from_env({}) == JaegerPorts(4317, 4318, 16686, 16685, 13133, 8888)


@pytest.mark.parametrize(("environ", "named"), [
    ({"JAEGER_OTLP_GRPC_PORT": "otlp"}, "JAEGER_OTLP_GRPC_PORT"),
    ({"JAEGER_QUERY_HTTP_PORT": "70000"}, "JAEGER_QUERY_HTTP_PORT"),
    ({"JAEGER_HEALTH_PORT": "16686"}, "JAEGER_HEALTH_PORT repeats JAEGER_QUERY_HTTP_PORT"),
])
def test_a_bad_or_repeated_port_is_refused_naming_the_variable(environ, named):
    with pytest.raises(ConfigError, match=named):
        JaegerPorts.from_env(environ)


def test_metrics_level_none_turns_jaegers_own_metrics_and_their_port_off():
    # With no metrics listener its standard port is free for another use.
    ports = JaegerPorts.from_env({"JAEGER_METRICS_LEVEL": "none", "JAEGER_OTLP_GRPC_PORT": "8888"})
    assert ports.metrics is None and "metrics" not in ports.in_use()
    assert ports.env()["JAEGER_METRICS_LEVEL"] == "none" and "JAEGER_METRICS_PORT" not in ports.env()
