"""The Kubernetes manifests hold the rules the design asks for (no cluster here, so: their structure)."""

import pathlib

import pytest
import yaml

from services.registry import registry

DIR = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
DOCS = [d for f in sorted(DIR.glob("*.yaml")) if f.name != "kustomization.yaml"
        for d in yaml.safe_load_all(f.read_text()) if d]
WORKLOADS = (*registry({}).names, "edge")


def _of(kind):
    return {d["metadata"]["name"]: d for d in DOCS if d["kind"] == kind}


def test_kustomization_lists_every_manifest():
    listed = set(yaml.safe_load((DIR / "kustomization.yaml").read_text())["resources"])
    assert listed == {f.name for f in DIR.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("name", WORKLOADS)
def test_each_workload_is_hardened_probed_and_limited(name):
    pod = _of("Deployment")[name]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] and not pod["automountServiceAccountToken"]
    assert container["securityContext"]["readOnlyRootFilesystem"] and not container["securityContext"]["allowPrivilegeEscalation"]
    assert {"requests", "limits"} <= container["resources"].keys()
    assert container["readinessProbe"] and container["livenessProbe"]
    if name != "edge":
        assert container["readinessProbe"]["grpc"]["port"] == 8086  # the plaintext health-only port
    secrets = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
    assert secrets == [f"pki-{name}"], "each workload mounts only its own certificate"


@pytest.mark.parametrize("name", registry({}).names)
def test_services_are_headless_so_clients_balance_over_every_pod(name):
    assert _of("Service")[name]["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("name", WORKLOADS)
def test_each_workload_has_a_disruption_budget_an_autoscaler_and_a_network_policy(name):
    assert name in _of("PodDisruptionBudget") and name in _of("HorizontalPodAutoscaler")
    assert name in _of("NetworkPolicy") or (name == "accounts" and "accounts" in _of("NetworkPolicy"))


def test_network_traffic_is_denied_unless_allowed():
    deny = _of("NetworkPolicy")["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    orders_in = _of("NetworkPolicy")["orders"]["spec"]["ingress"]
    assert orders_in == [{"from": [{"podSelector": {"matchLabels": {"app": "edge"}}}],
                          "ports": [{"protocol": "TCP", "port": 50053}]}], "only the edge calls orders"


def test_the_ingress_terminates_tls_and_sends_everything_to_the_edge():
    ingress = _of("Ingress")["edge"]
    spec = ingress["spec"]
    hosts = {rule["host"] for rule in spec["rules"]}
    assert hosts and all(hosts <= set(tls["hosts"]) and tls["secretName"] for tls in spec["tls"])
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    backends = [p["backend"]["service"] for rule in spec["rules"] for p in rule["http"]["paths"]]
    edge_ports = {p["name"] for p in _of("Service")["edge"]["spec"]["ports"]}
    assert backends and all(b["name"] == "edge" and b["port"]["name"] in edge_ports for b in backends)
    # The edge's network policy admits the controller of this ingress class, on the edge's port.
    allowed = _of("NetworkPolicy")["edge"]["spec"]["ingress"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": f"ingress-{spec['ingressClassName']}"}}} in allowed[0]["from"]


def test_jaeger_runs_the_same_config_as_make_up_in_one_hardened_pod():
    config = (DIR.parents[1] / "observability" / "jaeger" / "config.yaml").read_text()
    assert _of("ConfigMap")["jaeger-config"]["data"]["config.yaml"] == config, "copy observability/jaeger/config.yaml"
    deployment = _of("Deployment")["jaeger"]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"]["type"] == "Recreate", "traces live in one pod's memory"
    pod = deployment["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"].startswith("jaegertracing/jaeger:2.")
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert container["args"] == [f"--config=file:{mounted['config']}/config.yaml"]
    assert {"name": "JAEGER_LISTEN_HOST", "value": "0.0.0.0"} in container["env"]
    assert pod["securityContext"]["runAsNonRoot"] and not pod["automountServiceAccountToken"]
    assert container["securityContext"]["readOnlyRootFilesystem"] and {"requests", "limits"} <= container["resources"].keys()
    assert container["readinessProbe"]["httpGet"] == {"path": "/status", "port": "health"}


def test_every_workload_exports_spans_to_jaeger_and_the_network_policies_let_them():
    endpoint = _of("ConfigMap")["shop-config"]["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == "http://jaeger.shop.svc.cluster.local:4317"
    service = _of("Service")["jaeger"]["spec"]
    assert {"name": "otlp-grpc", "port": 4317, "targetPort": "otlp-grpc"} in service["ports"]
    container_ports = {p["name"]: p["containerPort"] for p in _of("Deployment")["jaeger"]["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert container_ports["otlp-grpc"] == 4317
    egress = _of("NetworkPolicy")["common-egress"]["spec"]
    assert egress["podSelector"] == {}
    assert {"to": [{"podSelector": {"matchLabels": {"app": "jaeger"}}}], "ports": [{"protocol": "TCP", "port": 4317}]} in egress["egress"]
    jaeger_in = _of("NetworkPolicy")["jaeger"]["spec"]
    assert jaeger_in["podSelector"] == {"matchLabels": {"app": "jaeger"}} and jaeger_in["policyTypes"] == ["Ingress"]
    otlp = next(rule for rule in jaeger_in["ingress"] if {"protocol": "TCP", "port": 4317} in rule["ports"])
    senders = otlp["from"][0]["podSelector"]["matchExpressions"][0]
    assert (senders["key"], senders["operator"], set(senders["values"])) == ("app", "In", set(WORKLOADS))
