"""The capacity model: from the CPU one request costs each process (measured by bench/costs.py)
to the cores each workload, and the Cassandra nodes, a rate of orders and reads needs; and the
Kubernetes manifests' requests, autoscalers, disruption budgets and spread, checked against it.

    python -m tools.capacity                                  # the table for the committed figures
    python -m tools.capacity .artifacts/bench/costs-cassandra.json --orders 50 --reads 500
    python -m tools.capacity --check deploy/kubernetes        # the manifests follow the model (make k8s-check)

The arithmetic, for each workload w (the edge, each service, the Cassandra cluster):

    cores(w)        = sum over request kinds k of rate(k) x CPU ms(k, w) / 1000
    provisioned(w)  = cores(w) / TARGET_UTILIZATION        (the autoscaler's target: 40 % headroom)
    minReplicas(w)  = max(2, ceil(provisioned(w) / POD_CPU(w)))           at the REFERENCE rates
    maxReplicas(w)  = max(minReplicas + 1, ceil(PEAK x provisioned(w) / POD_CPU(w)))
    Cassandra nodes = a multiple of 3 (RF 3, one replica per zone), at least 3, with
                      cores / (NODE_CORES x NODE_UTILIZATION) nodes' worth of CPU

Reads are spread evenly over the measured read kinds (a product, an account, a page of orders).
The CPU figures are the whole cluster's: bench/costs.py measures on three nodes with RF 3, so
every replica's share of a write and every Paxos round is in them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "capacity" / "costs-cassandra.json"  # the measurement the manifests are sized from

ORDER = "POST order"
READS = ("GET product", "GET account", "GET orders")
REFERENCE_ORDERS_PER_S = 20.0   # what the manifests' minReplicas carry: a small shop at its busy hour
REFERENCE_READS_PER_S = 200.0
PEAK = 3.0                      # maxReplicas carry three times that
TARGET_UTILIZATION = 0.6        # HPA averageUtilization, as a share of the pod's CPU request
# CPU one pod requests: a service is one Python process (one core at most, the GIL); the edge
# runs 2 gunicorn workers (EDGE_WORKERS in deploy/kubernetes/edge.yaml).
POD_CPU = {"edge": 1.0, "accounts": 0.5, "catalog": 0.5, "orders": 0.5}
MEMORY_HEADROOM = 1.5           # memory request: the measured resident size after the load, x this
NODE_CORES = 4                  # a Cassandra node
NODE_UTILIZATION = 0.5          # leaves room for compaction, repair and a lost node's share (x1.5 on two of three)
REPLICATION_FACTOR = 3


@dataclasses.dataclass(frozen=True)
class Sizing:
    workload: str
    order_ms: float             # CPU ms this workload spends per order
    read_ms: float              # per read (mean over the read kinds)
    cores: float                # needed at the given rates
    provisioned: float          # cores / TARGET_UTILIZATION
    pod_cpu: float
    min_replicas: int
    max_replicas: int
    memory_mib: int


def load(path: pathlib.Path = FIGURES) -> dict:
    figures = json.loads(path.read_text())
    missing = [k for k in (ORDER, *READS) if k not in figures.get("kinds", {})]
    if missing:
        raise ValueError(f"{path}: no figures for {missing} (made by bench/costs.py?)")
    return figures


def _mib(value: float) -> int:
    return 64 * math.ceil(value / 64)


def size(figures: dict, orders: float = REFERENCE_ORDERS_PER_S, reads: float = REFERENCE_READS_PER_S) -> list[Sizing]:
    """One Sizing per workload the figures measured (Cassandra last, replicas meaning nodes)."""
    kinds = figures["kinds"]
    sizings = []
    for workload in kinds[ORDER]["cpu_ms"]:
        order_ms = kinds[ORDER]["cpu_ms"][workload]
        read_ms = sum(kinds[k]["cpu_ms"][workload] for k in READS) / len(READS)
        cores = (orders * order_ms + reads * read_ms) / 1000
        peak_cores = PEAK * cores
        rss = figures.get("rss_mib", {}).get(workload, 0)
        if workload == "cassandra":
            nodes = lambda c: REPLICATION_FACTOR * max(1, math.ceil(c / (NODE_CORES * NODE_UTILIZATION) / REPLICATION_FACTOR))  # noqa: E731
            per_node = rss / REPLICATION_FACTOR  # measured on three nodes
            sizings.append(Sizing(workload, order_ms, read_ms, cores, cores / NODE_UTILIZATION, NODE_CORES,
                                  nodes(cores), nodes(peak_cores), _mib(per_node * MEMORY_HEADROOM)))
            continue
        pod_cpu = POD_CPU[workload]
        provisioned = cores / TARGET_UTILIZATION
        least = max(2, math.ceil(provisioned / pod_cpu))
        most = max(least + 1, math.ceil(PEAK * provisioned / pod_cpu))
        sizings.append(Sizing(workload, order_ms, read_ms, cores, provisioned, pod_cpu, least, most,
                              _mib(rss * MEMORY_HEADROOM)))
    return sizings


def table(figures: dict, sizings: list[Sizing], orders: float, reads: float) -> str:
    """The capacity table (Markdown), with what it was computed from."""
    lines = [
        f"{orders:g} orders/s and {reads:g} reads/s; figures of `{figures['command']}` "
        f"({figures['store']}, {figures['measured']}, {figures['cores']} cores, {figures['concurrency']} clients)",
        "",
        "| workload | CPU ms per order | CPU ms per read | cores needed | provisioned | per pod / node "
        f"| replicas (at {PEAK:g}x: max) | memory request |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in sizings:
        unit = f"{s.pod_cpu:g} core(s)" if s.workload != "cassandra" else f"{s.pod_cpu:g} cores, {NODE_UTILIZATION:.0%} busy"
        count = f"{s.min_replicas} ({s.max_replicas})" if s.workload != "cassandra" else f"{s.min_replicas} nodes ({s.max_replicas})"
        lines.append(f"| {s.workload} | {s.order_ms:.2f} | {s.read_ms:.2f} | {s.cores:.2f} | {s.provisioned:.2f} "
                     f"| {unit} | {count} | {s.memory_mib} Mi |")
    return "\n".join(lines)


# --- the manifests -----------------------------------------------------------------------------

def _documents(directory: pathlib.Path) -> dict[tuple[str, str], dict]:
    import yaml

    found = {}
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and "metadata" in doc:
                found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def _cpu(value) -> float:
    text = str(value)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def check(directory: pathlib.Path, sizings: list[Sizing]) -> list[str]:
    """What in the manifests disagrees with the model at the reference rates (empty: nothing)."""
    docs, problems = _documents(directory), []
    for s in sizings:
        if s.workload == "cassandra":
            continue  # Cassandra runs outside these manifests: docs/capacity.md says how many nodes
        w = s.workload
        deployment, hpa, pdb = (docs.get((kind, w)) for kind in ("Deployment", "HorizontalPodAutoscaler",
                                                                   "PodDisruptionBudget"))
        if not (deployment and hpa and pdb):
            problems.append(f"{w}: a Deployment, a HorizontalPodAutoscaler and a PodDisruptionBudget named {w}")
            continue
        pod = deployment["spec"]["template"]["spec"]
        requests = next(c for c in pod["containers"] if c["name"] == w)["resources"]["requests"]
        expected = {
            "Deployment replicas": (deployment["spec"].get("replicas"), s.min_replicas),
            "cpu request": (_cpu(requests.get("cpu", 0)), s.pod_cpu),
            "memory request": (requests.get("memory"), f"{s.memory_mib}Mi"),
            "HPA minReplicas": (hpa["spec"].get("minReplicas"), s.min_replicas),
            "HPA maxReplicas": (hpa["spec"].get("maxReplicas"), s.max_replicas),
            "HPA cpu averageUtilization": (
                next((m["resource"]["target"].get("averageUtilization") for m in hpa["spec"].get("metrics", [])
                      if m.get("resource", {}).get("name") == "cpu"), None), round(TARGET_UTILIZATION * 100)),
            "PDB maxUnavailable": (pdb["spec"].get("maxUnavailable"), 1),
        }
        problems += [f"{w}: {what} is {got!r}, the model says {want!r}" for what, (got, want) in expected.items()
                     if got != want]
        spread = {(c.get("topologyKey"), c.get("maxSkew")) for c in pod.get("topologySpreadConstraints", [])
                  if c.get("labelSelector", {}).get("matchLabels") == {"app": w}}
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone"):
            if (key, 1) not in spread:
                problems.append(f"{w}: no topologySpreadConstraint over {key} with maxSkew 1 for app={w}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The capacity table from bench/costs.py's figures.")
    parser.add_argument("figures", nargs="?", type=pathlib.Path, default=FIGURES)
    parser.add_argument("--orders", type=float, default=REFERENCE_ORDERS_PER_S, help="orders per second")
    parser.add_argument("--reads", type=float, default=REFERENCE_READS_PER_S, help="reads per second")
    parser.add_argument("--check", type=pathlib.Path, metavar="DIR",
                        help="check the Kubernetes manifests in DIR against the model at the reference rates")
    args = parser.parse_args(argv)
    figures = load(args.figures)
    if args.check:
        problems = check(args.check, size(figures))
        for problem in problems:
            print(f"capacity: {problem}", file=sys.stderr)
        if problems:
            print(f"capacity: {args.check} does not follow the model of {args.figures} (python -m tools.capacity)",
                  file=sys.stderr)
        return 1 if problems else 0
    print(table(figures, size(figures, args.orders, args.reads), args.orders, args.reads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
