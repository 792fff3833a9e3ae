"""What the edge costs: one authenticated GET three ways, on this machine, in one run.

    .venv/bin/python -m bench.edge_bench [--seconds 10] [--concurrency 8]

1. GET /v1/accounts/{id} through the edge (gunicorn, 2 workers x 8 threads) -> mTLS gRPC -> accounts
2. the same GetAccount called directly over mTLS gRPC
3. GET /ping on a bare Flask app under the same gunicorn settings
4. POST /v1/orders through the edge: the whole saga (accounts, catalog prices, reservation, confirm)

Prints requests/s, p50/p90/p99 latency, the edge workers' CPU time per request, and the peak
resident memory of every process. The
load comes from separate processes on 127.0.0.1, bounded by --seconds; everything started
here is stopped here, by PID.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.traffic import cpu_seconds  # noqa: E402
from harness import servers  # noqa: E402  (the same launchers the tests use)
from harness.shop import make_product  # noqa: E402
from harness.stack import Stack  # noqa: E402


def _http_worker(url: str, headers: dict, seconds: float, queue, body: dict | None = None) -> None:
    import requests

    session, latencies = requests.Session(), []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        reply = session.post(url, json=body, headers=headers, timeout=10) if body else session.get(url, headers=headers, timeout=10)
        latencies.append(time.perf_counter() - started)
        if reply.status_code != 200:
            raise SystemExit(f"unexpected {reply.status_code}: {reply.text[:200]}")
    queue.put(latencies)


def _grpc_worker(pki_dir: str, port: int, account_id: str, token: str, seconds: float, queue) -> None:
    from shop.accounts.v1 import accounts_pb2 as pb
    from shop.accounts.v1 import accounts_pb2_grpc

    with servers.channel(pathlib.Path(pki_dir), port, "edge") as channel:
        stub, latencies = accounts_pb2_grpc.AccountsServiceStub(channel), []
        request, metadata = pb.GetAccountRequest(id=account_id), servers.bearer(token)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            stub.GetAccount(request, timeout=10, metadata=metadata)
            latencies.append(time.perf_counter() - started)
    queue.put(latencies)


def _load(target, args: tuple, concurrency: int, seconds: float, extra: tuple = ()) -> list[float]:
    queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=target, args=(*args, seconds, queue, *extra)) for _ in range(concurrency)]
    for worker in workers:
        worker.start()
    latencies = [x for _ in workers for x in queue.get(timeout=seconds + 60)]
    for worker in workers:
        worker.join(10)
    return latencies


def _cpu_seconds(master_pid: int) -> float:
    """User+system CPU of a gunicorn master's worker processes (from /proc)."""
    return cpu_seconds(list(map(int, pathlib.Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split())))


def _peak_rss_mib(*pids: int) -> float:
    """Peak resident memory (VmHWM) of the given processes and their children, in MiB."""
    total = 0
    for pid in pids:
        children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for each in [str(pid), *children]:
            status = pathlib.Path(f"/proc/{each}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    return total / 1024


def _row(name: str, latencies: list[float], seconds: float, cpu: float | None = None) -> str:
    q = statistics.quantiles(latencies, n=100)
    cpu_text = f"{cpu * 1000 / len(latencies):8.2f}" if cpu is not None else "       -"
    return (f"| {name:<34} | {len(latencies) / seconds:8.0f} | {q[49] * 1000:7.2f} | {q[89] * 1000:7.2f} | "
            f"{q[98] * 1000:7.2f} | {cpu_text} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki_dir = servers.write_test_pki(pathlib.Path(tmp) / "pki")
        stack = Stack(pki_dir, pathlib.Path(tmp))
        try:
            account = stack.register("benchuser")
            token = stack.token("benchuser")["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            url = f"{stack.url}/v1/accounts/{account['id']}"
            _load(_http_worker, (url, headers), 2, 1.0)  # warm up channels and the JWKS cache
            cpu_before = _cpu_seconds(stack.edge.process.pid)
            edge = _load(_http_worker, (url, headers), args.concurrency, args.seconds)
            edge_cpu = _cpu_seconds(stack.edge.process.pid) - cpu_before
            direct = _load(_grpc_worker, (str(pki_dir), stack.accounts.port, account["id"], token),
                           args.concurrency, args.seconds)
            product = make_product(stack, 1_000_000_000, "Bench beans")
            order_body = {"items": [{"productId": product, "quantity": "1"}]}
            cpu_before = _cpu_seconds(stack.edge.process.pid)
            orders = _load(_http_worker, (f"{stack.url}/v1/orders", headers), args.concurrency, args.seconds,
                           extra=(order_body,))
            orders_cpu = _cpu_seconds(stack.edge.process.pid) - cpu_before
            memory = {"edge (master + workers)": _peak_rss_mib(stack.edge.process.pid),
                      "accounts": _peak_rss_mib(stack.accounts.process.pid),
                      "catalog": _peak_rss_mib(stack.catalogs[0].process.pid),
                      "orders": _peak_rss_mib(stack.orders.process.pid)}
        finally:
            stack.stop()
        bare = servers.ServiceProcess("gunicorn", {"EDGE_PORT": "0", "EDGE_ACCESS_LOG": ""},
                                      args=("-c", str(ROOT / "edge" / "gunicorn_conf.py"), "bench.bare_app:app"))
        try:
            bare_url = f"http://127.0.0.1:{bare.port}/ping"
            _load(_http_worker, (bare_url, {}), 2, 1.0)
            cpu_before = _cpu_seconds(bare.process.pid)
            floor = _load(_http_worker, (bare_url, {}), args.concurrency, args.seconds)
            floor_cpu = _cpu_seconds(bare.process.pid) - cpu_before
        finally:
            bare.stop()
    print(f"{args.concurrency} client processes, {args.seconds:.0f} s each, {os.cpu_count()} cores, server and clients on one machine")
    print("| call | req/s | p50 ms | p90 ms | p99 ms | server CPU ms/req |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(_row("GET /v1/accounts/{id} via the edge", edge, args.seconds, edge_cpu))
    print(_row("GetAccount direct over mTLS gRPC", direct, args.seconds))
    print(_row("GET /ping, bare Flask, same gunicorn", floor, args.seconds, floor_cpu))
    print(_row("POST /v1/orders via the edge (saga)", orders, args.seconds, orders_cpu))
    print()
    print("| process | peak RSS MiB |")
    print("| --- | ---: |")
    for name, mib in memory.items():
        print(f"| {name} | {mib:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
