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
