"""What one request costs each process, in CPU: the input of the capacity model (tools/capacity.py).

    .venv/bin/python -m bench.costs [--store cassandra] [--seconds 20] [--concurrency 8] [--products 1]
                                    [--kind "POST order"] [--recovery-interval 15] [--out FILE]

Starts the shop (harness/stack.py: accounts, catalog, orders, the edge with 2 gunicorn workers x 8
threads) on the embedded store, or with --store cassandra on a three-node Cassandra cluster
(127.0.0.1-3, replication factor 3, LOCAL_QUORUM, SERIAL: the production setting), registers users
and a product (--products: several, the requests spread over them) through the edge, then drives
one kind of request (--kind: only those named) at a time (bench/traffic.py:
POST order, GET product, GET account, GET orders) with --concurrency clients in a closed loop for
--seconds after a short warm-up. For each kind it reads the user+system CPU time of every process
(/proc) before and after and divides by the answers that were 200: milliseconds of CPU per request,
per process (the edge's master and workers counted together, the Cassandra nodes together). Also
prints throughput and latency, and resident memory per process at the end.

Writes the figures as JSON to --out (default .artifacts/bench/costs-<store>.json), with the command
and the machine; `python -m tools.capacity FILE` turns them into the capacity table.

Every process started here is stopped here, by PID; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import json
import os
import pathlib
import shlex
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.http_client import closed_loop  # noqa: E402
from bench.traffic import ShopMix, check_edge, cpu_seconds, ms, percentiles_ms, rss_kib, stack_processes  # noqa: E402
from harness import servers  # noqa: E402
from harness.stack import Stack  # noqa: E402

WARM_SECONDS = 3.0


def _groups(stack, cassandra_pids: list[int]) -> dict[str, list[int]]:
    """Processes by what the model sizes: the edge (master and workers), each service, Cassandra."""
    groups: dict[str, list[int]] = {}
    for name, pid in stack_processes(stack).items():
        groups.setdefault("edge" if name.startswith("edge") else name.split()[0], []).append(pid)
    if cassandra_pids:
        groups["cassandra"] = cassandra_pids
    return groups


def _measure(stack, mix: ShopMix, kind: str, groups: dict[str, list[int]], args) -> dict:
    request = lambda n: mix.request_of(kind, n)  # noqa: E731
    asyncio.run(closed_loop(stack.edge.port, request, args.concurrency, WARM_SECONDS))
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    started = time.monotonic()
    outcomes = asyncio.run(closed_loop(stack.edge.port, request, args.concurrency, args.seconds))
    elapsed = time.monotonic() - started
    served = [o for o in outcomes if o.status == 200]
    if not served:
        raise RuntimeError(f"{kind}: no request was served ({[o.status for o in outcomes[:5]]})")
    cpu_ms = {name: round((cpu_seconds(pids) - before[name]) * 1000 / len(served), 3) for name, pids in groups.items()}
    p50, p99 = percentiles_ms([o.seconds for o in served], 50, 99)
    refused = collections.Counter(str(o.status) for o in outcomes if o.status != 200)
    return {"served": len(served), "errors": len(outcomes) - len(served), "not_served": dict(sorted(refused.items())),
            "per_second": round(len(served) / elapsed, 1),
            "p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "cpu_ms": cpu_ms}


@contextlib.contextmanager
def store_settings(kind: str):
    """(store settings for the stack, Cassandra's PIDs): nothing for the embedded store."""
    if kind == "embedded":
        yield {}, []
        return
    from tools.cassandra.launcher import CassandraCluster

    with CassandraCluster(3) as cluster:
        yield {"STORE": "cassandra", "CASSANDRA_CONTACT_POINTS": cluster.contact_point,
               "CASSANDRA_KEYSPACE": f"bench_{uuid.uuid4().hex[:8]}", "CASSANDRA_REPLICATION_FACTOR": "3",
               "CASSANDRA_CONSISTENCY": "local_quorum", "CASSANDRA_SERIAL_CONSISTENCY": "serial"}, \
            [node.pid for node in cluster.nodes]


def run(args) -> dict:
    figures: dict = {
        "command": "python -m bench.costs " + shlex.join(sys.argv[1:]),
        "measured": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
        "cores": os.cpu_count(), "store": args.store, "concurrency": args.concurrency, "seconds": args.seconds,
        "products": args.products,
        "kinds": {},
    }
    with tempfile.TemporaryDirectory() as tmp, store_settings(args.store) as (store_env, cassandra_pids):
        # The recovery pass as a deployment runs it (every 15 s), not the tests' 0.5 s.
        stack = Stack(servers.write_test_pki(pathlib.Path(tmp) / "pki"), pathlib.Path(tmp), store_env=store_env,
                      orders_env={"RECOVERY_INTERVAL_SECONDS": args.recovery_interval, "RECOVERY_AGE_SECONDS": "30"})
        try:
            check_edge(stack.url)
            mix = ShopMix.set_up(stack, users=args.concurrency, products=args.products)
            groups = _groups(stack, cassandra_pids)
            for kind in args.kinds or ShopMix.KINDS:
                figures["kinds"][kind] = _measure(stack, mix, kind, groups, args)
                _print_kind(kind, figures["kinds"][kind])
            figures["rss_mib"] = {name: round(sum(rss_kib(pid) or 0 for pid in pids) / 1024) for name, pids in groups.items()}
        finally:
            with contextlib.suppress(AssertionError):  # a figure is still a figure if a process exits unclean
                stack.stop()
    return figures


def _print_kind(kind: str, measured: dict) -> None:
    cpu = ", ".join(f"{name} {value:.2f}" for name, value in measured["cpu_ms"].items())
    print(f"{kind:12} {measured['per_second']:7.1f}/s  p50 {ms(measured['p50_ms'])} ms  p99 {ms(measured['p99_ms'])} ms  "
          f"errors {measured['errors']} {measured['not_served'] or ''}  CPU ms per request: {cpu}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("embedded", "cassandra"), default="embedded")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--recovery-interval", default="15", help="orders' RECOVERY_INTERVAL_SECONDS (its default: 15)")
    parser.add_argument("--products", type=int, default=1,
                        help="products the requests spread over (default 1: every order on one hot stock row)")
    parser.add_argument("--kind", dest="kinds", action="append", choices=ShopMix.KINDS,
                        help="measure only this kind of request (repeatable; default: every kind)")
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    out = args.out or ROOT / ".artifacts" / "bench" / f"costs-{args.store}.json"
    figures = run(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"figures written to {out}; the capacity table: python -m tools.capacity {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
