"""The `logs` compose profile ships the JSON log lines to Loki. No Loki or promtail image can be
had on this machine, so these checks are static: the configs parse, point at each other and at
the compose services, and read the fields our log lines really carry."""

import json
import logging

import yaml

from observability.logs import JsonFormatter
from tools.check_compose import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
LOKI = yaml.safe_load((ROOT / "observability/loki/loki.yml").read_text())
PROMTAIL = yaml.safe_load((ROOT / "observability/promtail/promtail.yml").read_text())
DATASOURCES = yaml.safe_load((ROOT / "observability/grafana/provisioning/datasources/prometheus.yml").read_text())


def _mounted_config(service: str) -> dict:
    """The config file a compose service is started with, read from the repository path mounted there."""
    spec = COMPOSE["services"][service]
    config_path = next(arg.split("=", 1)[1] for arg in spec["command"] if arg.startswith("-config.file="))
    source = next(v.split(":")[0] for v in spec["volumes"] if v.split(":")[1] == config_path)
    return yaml.safe_load((ROOT / source).read_text())


def test_loki_and_promtail_run_only_in_the_logs_profile_with_the_configs_of_the_repository():
    for name in ("loki", "promtail"):
        assert COMPOSE["services"][name]["profiles"] == ["logs"]
    assert _mounted_config("loki") == LOKI and _mounted_config("promtail") == PROMTAIL


def test_promtail_pushes_to_the_loki_service_on_the_port_loki_listens_on():
    urls = [client["url"] for client in PROMTAIL["clients"]]
    assert urls == [f"http://loki:{LOKI['server']['http_listen_port']}/loki/api/v1/push"]
    assert "promtail" in COMPOSE["services"] and "loki" in COMPOSE["services"]["promtail"]["depends_on"]


def test_grafana_queries_the_same_loki():
    loki = next(d for d in DATASOURCES["datasources"] if d["type"] == "loki")
    assert loki["url"] == f"http://loki:{LOKI['server']['http_listen_port']}"


def test_promtail_labels_lines_by_compose_service_and_reads_the_docker_socket_it_is_given():
    job = PROMTAIL["scrape_configs"][0]
    socket = job["docker_sd_configs"][0]["host"].removeprefix("unix://")
    assert f"{socket}:{socket}:ro" in COMPOSE["services"]["promtail"]["volumes"]
    relabel = {r["target_label"]: r["source_labels"] for r in job["relabel_configs"]}
    assert relabel["service"] == ["__meta_docker_container_label_com_docker_compose_service"]


def test_promtail_extracts_fields_our_log_lines_carry():
    record = logging.LogRecord("edge.access", logging.INFO, __file__, 1, "GET /healthz 200", None, None)
    line = json.loads(JsonFormatter("edge").format(record))
    stages = {next(iter(stage)): stage[next(iter(stage))] for stage in PROMTAIL["scrape_configs"][0]["pipeline_stages"]}
    assert set(stages["json"]["expressions"].values()) <= set(line)
    # Labels stay few (a label per request id would explode the index); ids ride as structured metadata.
    assert set(stages["labels"]) == {"level"} and {"trace_id", "request_id"} <= set(stages["structured_metadata"])
    assert LOKI["limits_config"]["allow_structured_metadata"] is True
    assert stages["timestamp"]["source"] in line
