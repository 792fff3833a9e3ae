"""The capacity model (tools/capacity.py): its arithmetic, and that the Kubernetes manifests and
docs/capacity.md follow it for the committed figures."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from tools import capacity

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"


def _figures(order_ms: dict, read_ms: dict, rss: dict | None = None) -> dict:
    kinds = {capacity.ORDER: {"cpu_ms": order_ms}, **{k: {"cpu_ms": read_ms} for k in capacity.READS}}
    return {"kinds": kinds, "rss_mib": rss or {}, "command": "python -m bench.costs", "store": "cassandra",
            "measured": "2026-12-03T09:00+00:00", "cores": 2, "concurrency": 8}


def test_cores_are_rate_times_cost_and_replicas_carry_them_at_the_target_utilization():
    figures = _figures({"orders": 10.0, "cassandra": 40.0}, {"orders": 1.0, "cassandra": 2.0}, {"orders": 100, "cassandra": 3000})
    orders, cassandra = capacity.size(figures, orders=100, reads=1000)
    assert orders.cores == pytest.approx(100 * 0.010 + 1000 * 0.001)  # 2 cores
    assert orders.provisioned == pytest.approx(2 / capacity.TARGET_UTILIZATION)
    assert orders.min_replicas == 7  # ceil(3.33 / 0.5)
    assert orders.max_replicas == 20  # ceil(3 x 3.33 / 0.5)
    assert orders.memory_mib == 192  # 100 MiB x 1.5, in steps of 64
    # Cassandra: 6 cores at 4 cores x 50 % a node = 3 nodes' worth; 3x that = 9 nodes; 1000 MiB a node x 1.5.
    assert cassandra.cores == pytest.approx(6) and (cassandra.min_replicas, cassandra.max_replicas) == (3, 9)
    assert cassandra.memory_mib == 1536


def test_a_small_rate_still_gets_two_replicas_and_three_nodes():
    orders, cassandra = capacity.size(_figures({"orders": 1.0, "cassandra": 1.0}, {"orders": 0.1, "cassandra": 0.1}), 1, 1)
    assert (orders.min_replicas, orders.max_replicas) == (2, 3)
    assert (cassandra.min_replicas, cassandra.max_replicas) == (3, 3)


def test_the_manifests_follow_the_model_of_the_committed_figures():
    assert capacity.check(MANIFESTS, capacity.size(capacity.load())) == []


def test_a_manifest_that_drifts_from_the_model_is_named(tmp_path):
    copy = tmp_path / "kubernetes"
    shutil.copytree(MANIFESTS, copy)
    orders = copy / "orders.yaml"
    orders.write_text(orders.read_text().replace("averageUtilization: 60", "averageUtilization: 85"))
    problems = capacity.check(copy, capacity.size(capacity.load()))
    assert problems == ["orders: HPA cpu averageUtilization is 85, the model says 60"]


def test_docs_capacity_shows_the_table_the_script_prints_for_the_committed_figures(capsys):
    assert capacity.main([]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed in (ROOT / "docs" / "capacity.md").read_text(), \
        "docs/capacity.md is behind: paste the output of python -m tools.capacity"


def test_the_committed_figures_come_from_the_benchmark_with_every_workload():
    figures = json.loads(capacity.FIGURES.read_text())
    assert figures["command"].startswith("python -m bench.costs") and figures["store"] == "cassandra"
    assert set(figures["kinds"][capacity.ORDER]["cpu_ms"]) == {"edge", "accounts", "catalog", "orders", "cassandra"}
