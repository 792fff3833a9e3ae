"""The compose file's static checks find real problems and pass on the file we ship."""

import copy

import yaml

from tools.check_compose import ROOT, problems

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_shipped_compose_file_passes():
    assert problems(COMPOSE) == []


def test_every_part_of_the_stack_is_there():
    assert {"cassandra", "pki", "accounts", "catalog", "orders", "edge", "jaeger", "prometheus", "grafana"} <= set(COMPOSE["services"])


def test_a_missing_mount_an_extra_port_and_a_missing_health_check_are_reported():
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["grafana"]["volumes"].append("./observability/nowhere:/x:ro")
    broken["services"]["orders"]["ports"] = ["50053:50053"]
    del broken["services"]["catalog"]["healthcheck"]
    found = "\n".join(problems(broken))
    assert "observability/nowhere" in found and "publishes 50053" in found and "catalog: has no health check" in found


def test_each_workload_mounts_only_its_own_certificate_volume():
    for name in ("accounts", "catalog", "orders", "edge"):
        mounts = [v.split(":")[0] for v in COMPOSE["services"][name].get("volumes", [])]
        assert mounts == [f"pki-{name}"], (name, mounts)
    holders = [n for n, s in COMPOSE["services"].items() if any(str(v).startswith("pki:") for v in s.get("volumes", []))]
    assert holders == ["pki"], "only the one-shot PKI job sees the CA key and every certificate"


def test_a_port_published_on_every_address_is_reported():
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["edge"]["ports"] = ["8080:8080"]
    assert problems(broken) == ["edge: publishes 8080 on 0.0.0.0, not on 127.0.0.1 only"]


def test_the_edge_serves_https_and_prometheus_scrapes_its_unpublished_metrics_port():
    edge = COMPOSE["services"]["edge"]
    assert (edge["environment"]["EDGE_TLS_CERT_FILE"], edge["environment"]["EDGE_TLS_KEY_FILE"]) == ("/pki/edge.pem", "/pki/edge.key")
    assert "https://localhost:8080/readyz" in " ".join(edge["healthcheck"]["test"])
    prometheus = yaml.safe_load((ROOT / "observability/prometheus/prometheus.yml").read_text())
    edge_job = next(job for job in prometheus["scrape_configs"] if job["job_name"] == "edge")
    metrics_port = edge["environment"]["EDGE_METRICS_PORT"]
    assert edge_job["static_configs"][0]["targets"] == [f"edge:{metrics_port}"]
    assert not any(metrics_port in str(published) for published in edge["ports"]), "metrics stay inside the network"


def test_jaeger_v2_runs_our_config_and_every_process_exports_its_spans_to_it():
    jaeger = COMPOSE["services"]["jaeger"]
    assert jaeger["image"] == "jaegertracing/jaeger:2.13.0"
    assert "./observability/jaeger/config.yaml:/etc/jaeger/config.yaml:ro" in jaeger["volumes"]
    assert [p.split(":")[-1] for p in jaeger["ports"]] == ["16686"], "only the query API and UI are published"
    for name in ("accounts", "catalog", "orders", "edge"):
        assert COMPOSE["services"][name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317", name


def test_a_jaeger_without_our_config_or_out_of_reach_is_reported():
    broken = copy.deepcopy(COMPOSE)
    jaeger = broken["services"]["jaeger"]
    jaeger["volumes"] = ["./observability/jaeger/config.yaml:/etc/jaeger/config.yaml"]
    del jaeger["environment"]["JAEGER_LISTEN_HOST"]
    broken["services"]["orders"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://otel-collector:4317"
    assert problems(broken) == [
        "jaeger: does not mount ./observability/jaeger/config.yaml read-only",
        "jaeger: JAEGER_LISTEN_HOST is not 0.0.0.0, so no other container reaches its OTLP port",
        "orders: exports spans to http://otel-collector:4317, not to Jaeger's OTLP port http://jaeger:4317",
    ]
    jaeger["volumes"], jaeger["command"] = ["./observability/jaeger/config.yaml:/etc/jaeger/config.yaml:ro"], []
    assert "jaeger: is not started with --config=file:/etc/jaeger/config.yaml" in problems(broken)
    del broken["services"]["jaeger"]
    assert "jaeger: missing (the services export their spans to it)" in problems(broken)
