"""services/workloads.toml is the one list of the shop's services: the dev stack, the test stack and
the dev PKI read it, and every deployment file that names services is held to it here. A service
added to the registry but missing from compose, Kubernetes, Prometheus or the release workflow (or
left behind there after it was removed) fails one of these tests, naming what is missing."""

from __future__ import annotations

import importlib
import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

from runtime.workloads import EDGE, OPERATOR, RegistryError, load
from services.registry import registry

ROOT = pathlib.Path(__file__).resolve().parents[2]
REGISTRY = registry({})
SERVICES = REGISTRY.services
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
K8S = ROOT / "deploy" / "kubernetes"
K8S_DOCS = [d for f in sorted(K8S.glob("*.yaml")) if f.name != "kustomization.yaml"
            for d in yaml.safe_load_all(f.read_text()) if d]


def _k8s(kind: str, name: str) -> dict:
    return next(d for d in K8S_DOCS if d["kind"] == kind and d["metadata"]["name"] == name)


def _k8s_env(name: str) -> dict[str, str]:
    container = _k8s("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container.get("env", [])}


def _ids(workload) -> str:
    return workload.name


@pytest.mark.parametrize("workload", SERVICES, ids=_ids)
def test_compose_runs_each_service_with_its_port_its_certificate_and_its_callees(workload):
    service = COMPOSE[workload.name]
    env = service["environment"]
    assert service["command"] == ["python", "-m", workload.module]
    assert (env["GRPC_PORT"], env["METRICS_PORT"], env["HEALTHCHECK_WORKLOAD"]) == (
        str(workload.port), str(workload.metrics_port), workload.name)
    assert service["volumes"] == [f"pki-{workload.name}:/pki:ro"]
    assert f"127.0.0.1:{workload.port}" in service["healthcheck"]["test"]
    for callee in workload.calls:
        assert env[REGISTRY[callee].target_variable] == f"dns:///{callee}:{REGISTRY[callee].port}", callee
        assert service["depends_on"][callee] == {"condition": "service_healthy"}, callee


def test_compose_certifies_every_identity_and_the_edge_fronts_every_service():
    pki = COMPOSE["pki"]
    script = pki["command"][-1]
    assert re.findall(r"--workload (\S+)", script) == list(REGISTRY.identities)
    copied = re.search(r"for w in ([^;]+); do", script).group(1).split()
    assert copied == [*REGISTRY.names, EDGE]
    assert [v.split(":")[0] for v in pki["volumes"][1:]] == [f"pki-{name}" for name in copied]
    edge = COMPOSE[EDGE]
    assert edge["environment"]["EDGE_UPSTREAMS"].split(",") == [f"{w.grpc}={w.name}:{w.port}" for w in SERVICES]
    assert set(edge["depends_on"]) == set(REGISTRY.names)
    local = yaml.safe_load((ROOT / "tools" / "containers" / "compose.local.yml").read_text())["services"]
    assert all(local[name]["image"] == "shop-local/shop:latest" for name in (*REGISTRY.names, "pki", EDGE))


@pytest.mark.parametrize("workload", SERVICES, ids=_ids)
def test_kubernetes_runs_each_service_and_lets_through_exactly_its_calls(workload):
    name = workload.name
    assert f"{name}.yaml" in yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    pod = _k8s("Deployment", name)["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["python", "-m", workload.module]
    assert _k8s_env(name)["GRPC_PORT"] == str(workload.port)
    assert _k8s("Service", name)["spec"]["ports"][0]["port"] == workload.port
    assert [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v] == [f"pki-{name}"]
    for callee in workload.calls:
        assert _k8s_env(name)[REGISTRY[callee].target_variable] == f"dns:///{callee}:{REGISTRY[callee].port}"
    policy = _k8s("NetworkPolicy", name)["spec"]
    senders = {peer["podSelector"]["matchLabels"]["app"] for rule in policy["ingress"] for peer in rule["from"]}
    assert senders == {EDGE, *REGISTRY.callers_of(name)}
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": workload.port}]
    reached = {(rule["to"][0]["podSelector"]["matchLabels"]["app"], rule["ports"][0]["port"])
               for rule in policy.get("egress", [])}
    assert reached == {(callee, REGISTRY[callee].port) for callee in workload.calls}


def test_kubernetes_edge_reaches_every_service_and_only_the_registrys_workloads_export_traces():
    upstreams = next(e["value"] for e in _k8s("Deployment", EDGE)["spec"]["template"]["spec"]["containers"][0]["env"]
                     if e["name"] == "EDGE_UPSTREAMS")
    assert upstreams.split(",") == [f"{w.grpc}=dns:///{w.name}:{w.port}" for w in SERVICES]
    egress = _k8s("NetworkPolicy", EDGE)["spec"]["egress"]
    assert [(r["to"][0]["podSelector"]["matchLabels"]["app"], r["ports"][0]["port"]) for r in egress] == [
        (w.name, w.port) for w in SERVICES]
    tracing = _k8s("NetworkPolicy", "jaeger")["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]
    assert tracing["values"] == [*REGISTRY.names, EDGE]
    deployments = {d["metadata"]["name"] for d in K8S_DOCS if d["kind"] == "Deployment"}
    assert deployments - {"jaeger"} == {*REGISTRY.names, EDGE}, "a Deployment no registry entry accounts for"


def test_prometheus_scrapes_every_service_on_its_metrics_port():
    prometheus = yaml.safe_load((ROOT / "observability" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "services")
    assert [(c["names"], c["port"]) for c in job["dns_sd_configs"]] == [([w.name], w.metrics_port) for w in SERVICES]


def test_the_release_workflow_waits_for_every_workload():
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    waited = re.search(r"for workload in ([^;]+); do", workflow).group(1).split()
    assert waited == [*REGISTRY.names, EDGE]


def test_the_readme_gives_every_services_default_port():
    readme = (ROOT / "README.md").read_text()
    for workload in SERVICES:
        assert f"{workload.name} {workload.port}" in readme, workload.name


@pytest.mark.parametrize(("text", "complaint"), [
    ('[[service]]\nname = "edge"\ngrpc = "a.v1.AService"\nport = 1\nmetrics_port = 2\n', "name is taken"),
    ('[[service]]\nname = "a"\ngrpc = "a.v1.AService"\nport = 1\nmetrics_port = 2\ncalls = ["b"]\n', "not declared before"),
    ('[[service]]\nname = "a"\ngrpc = "AService"\nport = 1\nmetrics_port = 2\n', "full service name"),
    ('[[service]]\nname = "a"\ngrpc = "a.v1.AService"\nport = 1\nmetrics_port = 1\n', "a port another one has"),
    ('[[service]]\nname = "a"\ngrpc = "a.v1.AService"\nport = 1\nmetrics_port = 2\nimage = "x"\n', "unknown keys image"),
])
def test_a_malformed_registry_is_refused_naming_the_entry(tmp_path, text, complaint):
    path = tmp_path / "workloads.toml"
    path.write_text(text)
    with pytest.raises(RegistryError, match=complaint):
        load(path)


def test_the_identities_are_the_services_then_the_edge_and_the_operator():
    assert REGISTRY.identities == (*REGISTRY.names, EDGE, OPERATOR)


@pytest.mark.parametrize("workload", SERVICES, ids=_ids)
def test_each_service_serves_the_grpc_service_its_registry_entry_names(workload):
    server = importlib.import_module(f"{workload.module}.server")
    assert (server.DESCRIPTOR.full_name, server.SERVICE) == (workload.grpc, workload.name)


def test_a_service_given_a_malformed_registry_stops_at_start_saying_why(tmp_path):
    bad = tmp_path / "workloads.toml"
    bad.write_text('[[service]]\nname = "catalog"\ngrpc = "CatalogService"\nport = 1\nmetrics_port = 2\n')
    started = subprocess.run([sys.executable, "-m", "services.catalog"], capture_output=True, text=True, timeout=60,
                             cwd=ROOT, env={**os.environ, "WORKLOADS_FILE": str(bad)})
    assert started.returncode == 2, started.stderr
    assert started.stderr.startswith("configuration error:") and "full service name" in started.stderr
    assert "Traceback" not in started.stderr
