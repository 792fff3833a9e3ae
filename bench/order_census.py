"""What an order asks of Cassandra, counted by Cassandra itself: requests, statements, messages and CPU.

    .venv/bin/python -m bench.order_census [--concurrency 1,16] [--seconds 15] [--idle-seconds 10]

Starts a three-node cluster (127.0.0.1-3, replication factor 3, LOCAL_QUORUM and SERIAL, Paxos v2:
the production setting) and the shop on it, as bench/costs.py does, then places orders through the
edge (bench/traffic.py's POST order: one unit of one product, its own Idempotency-Key) with each
--concurrency's clients in a closed loop for --seconds. Before that, --idle-seconds with no traffic at
all measure what the shop asks of the cluster by itself (readiness checks, the recovery pass), which
is taken off the figures of each load at its rate.

Per order, from the nodes' virtual tables, summed over the three nodes:
  requests    native-protocol requests, by the service that sent them (system_views.clients, whose
              client address is matched to the process that holds the socket)
  reads       coordinator reads by table (system_views.coordinator_read_latency): LOCAL_QUORUM reads
  writes      coordinator writes by table (system_views.coordinator_write_latency): plain writes
  messages    messages the nodes sent each other (system_views.internode_outbound)
and the CPU of the three JVMs and of each shop process (/proc). Conditional writes and batches and
SERIAL reads are counted as requests only (the coordinator's read and write tables leave them out).

Every process started here is stopped here, by PID; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.costs import store_settings  # noqa: E402
from bench.http_client import closed_loop  # noqa: E402
from bench.traffic import ShopMix, check_edge, cpu_seconds, stack_processes  # noqa: E402
from harness import servers  # noqa: E402
from harness.stack import Stack  # noqa: E402

_TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def _socket_owners(pids: dict[str, int]) -> dict[int, str]:
    """Local TCP port -> the name of the process (of `pids`) that holds that socket."""
    owner_of_inode = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        owner_of_inode[int(target[8:-1])] = name
    owners = {}
    for table in _TCP_TABLES:
        with contextlib.suppress(OSError):
            for line in pathlib.Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                inode = int(fields[9])
                if inode in owner_of_inode:
                    owners[int(fields[1].rsplit(":", 1)[1], 16)] = owner_of_inode[inode]
    return owners


class Counters:
    """The cluster's counters, read from every node (a node's virtual tables describe that node only)."""

    def __init__(self, session, keyspace_prefix: str, services: dict[str, int], cassandra_pids: list[int]):
        self._session = session
        self._hosts = list(session.cluster.metadata.all_hosts())
        self._prefix = keyspace_prefix
        self._services = services
        self._cassandra = cassandra_pids

    def read(self) -> collections.Counter:
        counts: collections.Counter = collections.Counter()
        owners = _socket_owners(self._services)
        for host in self._hosts:
            for row in self._session.execute("SELECT port, request_count FROM system_views.clients", host=host):
                counts[("requests", owners.get(row.port, "other clients"))] += row.request_count
            for kind in ("read", "write"):
                for row in self._session.execute(
                        f"SELECT keyspace_name, table_name, count FROM system_views.coordinator_{kind}_latency", host=host):
                    if row.keyspace_name.startswith(self._prefix) and row.count:
                        service = row.keyspace_name[len(self._prefix):]
                        counts[(f"{kind}s", f"{service}.{row.table_name}")] += row.count
            for row in self._session.execute("SELECT sent_count FROM system_views.internode_outbound", host=host):
                counts[("messages", "between nodes")] += row.sent_count
        counts[("cpu ms", "cassandra")] = round(cpu_seconds(self._cassandra) * 1000)
        for name, pid in self._services.items():
            counts[("cpu ms", "edge" if name.startswith("edge") else name)] += round(cpu_seconds([pid]) * 1000)
        return counts


def _delta(after: collections.Counter, before: collections.Counter) -> collections.Counter:
    return collections.Counter({key: after[key] - before[key] for key in after if after[key] != before[key]})


def _print(title: str, per_order: dict, served: int, rate: float) -> None:
    print(f"\n{title}: {served} orders, {rate:.1f}/s; per order, with the idle background taken off:")
    for what in ("requests", "reads", "writes", "messages", "cpu ms"):
        items = sorted(((name, value) for (kind, name), value in per_order.items() if kind == what), key=lambda i: -i[1])
        total = sum(value for _, value in items)
        shown = ", ".join(f"{name} {value:.2f}" for name, value in items if abs(value) >= 0.05)
        print(f"  {what:9} {total:8.2f}   {shown}")


def _print_warnings(stack) -> None:
    """What Cassandra warned the services of meanwhile (runtime.cassandra logs it, once a minute
    for warnings alike), so a census also shows a read through tombstones or an oversized batch."""
    services = {"accounts": [stack.accounts], "catalog": stack.catalogs, "orders": [stack.orders]}
    warned = [(name, line.strip()) for name, processes in services.items() for process in processes
              for line in list(process.lines) if "Cassandra warns" in line]
    print(f"\nCassandra's warnings to the services: {len(warned) or 'none'}")
    for name, line in warned:
        print(f"  {name}: {line[:300]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,16", help="clients of each load, comma-separated")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    from cassandra.cluster import Cluster

    with tempfile.TemporaryDirectory() as tmp, store_settings("cassandra") as (store_env, cassandra_pids):
        stack = Stack(servers.write_test_pki(pathlib.Path(tmp) / "pki"), pathlib.Path(tmp), store_env=store_env,
                      orders_env={"RECOVERY_INTERVAL_SECONDS": "15", "RECOVERY_AGE_SECONDS": "30"})
        host, port = store_env["CASSANDRA_CONTACT_POINTS"].split(",")[0].split(":")
        cluster = Cluster([host], port=int(port))
        try:
            check_edge(stack.url)
            concurrencies = [int(c) for c in args.concurrency.split(",")]
            mix = ShopMix.set_up(stack, users=max(concurrencies), products=1)
            counters = Counters(cluster.connect(), store_env["CASSANDRA_KEYSPACE"] + "_", stack_processes(stack),
                                cassandra_pids)
            request = lambda n: mix.request_of("POST order", n)  # noqa: E731
            asyncio.run(closed_loop(stack.edge.port, request, 2, 3.0))  # warm: connections, prepared statements

            before, started = counters.read(), time.monotonic()
            time.sleep(args.idle_seconds)
            idle = _delta(counters.read(), before)
            idle_per_second = {key: value / (time.monotonic() - started) for key, value in idle.items()}
            print("idle, per second: " + ", ".join(f"{kind} {name} {value:.1f}" for (kind, name), value in
                                                    sorted(idle_per_second.items()) if abs(value) >= 0.05))
            for concurrency in concurrencies:
                before, started = counters.read(), time.monotonic()
                outcomes = asyncio.run(closed_loop(stack.edge.port, request, concurrency, args.seconds))
                elapsed = time.monotonic() - started
                during = _delta(counters.read(), before)
                served = sum(1 for o in outcomes if o.status == 200)
                if not served:
                    raise RuntimeError(f"no order was served at {concurrency} clients")
                per_order = {key: (during[key] - idle_per_second.get(key, 0) * elapsed) / served
                             for key in set(during) | set(idle_per_second)}
                _print(f"{concurrency} client{'s' if concurrency > 1 else ''}", per_order, served, served / elapsed)
            _print_warnings(stack)
        finally:
            cluster.shutdown()
            with contextlib.suppress(AssertionError):
                stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
