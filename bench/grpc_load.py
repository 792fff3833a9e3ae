"""Closed-loop gRPC load on accounts' GetAccount, for bench/side_by_side.py (variants A and B).

    run(target, pki_dir, token, account_id, conc=16, seconds=8) -> {"requests", "errors", "duration_us", "p50_us", ...}

Two client processes (as wrk runs two threads), each keeping conc/2 calls in flight on one mTLS
channel (the edge's workload certificate, the token as `authorization` metadata), for `seconds`.
The clients share the machine with the server; what side_by_side compares is the server's CPU per call.
"""

from __future__ import annotations

import multiprocessing
import pathlib
import statistics
import threading
import time


def _client(target: str, pki_dir: str, token: str, account_id: str, in_flight: int, seconds: float, out) -> None:
    import grpc

    from shop.accounts.v1 import accounts_pb2, accounts_pb2_grpc

    pki = pathlib.Path(pki_dir)
    credentials = grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes(), (pki / "edge.key").read_bytes(),
                                               (pki / "edge.pem").read_bytes())
    with grpc.secure_channel(target, credentials, options=[("grpc.ssl_target_name_override", "localhost")]) as channel:
        call = accounts_pb2_grpc.AccountsServiceStub(channel).GetAccount
        request, metadata = accounts_pb2.GetAccountRequest(id=account_id), [("authorization", f"Bearer {token}")]
        call(request, metadata=metadata, timeout=10)  # connected and warm
        latencies: list[float] = []
        errors = [0]
        lock, done = threading.Lock(), threading.Event()
        deadline = time.monotonic() + seconds
        running = [in_flight]

        def send() -> None:
            started = time.monotonic()
            future = call.future(request, metadata=metadata, timeout=10)
            future.add_done_callback(lambda f: finished(f, started))

        def finished(future, started: float) -> None:
            now = time.monotonic()
            with lock:
                if future.exception() is None:
                    latencies.append(now - started)
                else:
                    errors[0] += 1
                if now < deadline:
                    send()
                    return
                running[0] -= 1
                if not running[0]:
                    done.set()

        began = time.monotonic()
        for _ in range(in_flight):
            send()
        done.wait(seconds + 30)
        out.put((latencies, errors[0], time.monotonic() - began))


def run(target: str, pki_dir: pathlib.Path, token: str, account_id: str, conc: int, seconds: float) -> dict:
    context = multiprocessing.get_context("spawn")  # grpcio does not survive fork()
    out = context.Queue()
    per_client = [conc // 2, conc - conc // 2]
    clients = [context.Process(target=_client, args=(target, str(pki_dir), token, account_id, n, seconds, out))
               for n in per_client]
    for client in clients:
        client.start()
    results = [out.get(timeout=seconds + 90) for _ in clients]
    for client in clients:
        client.join(30)
    latencies = sorted(x for lat, _, _ in results for x in lat)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {"requests": len(latencies), "errors": sum(e for _, e, _ in results), "non2xx": 0,
            "duration_us": max(d for _, _, d in results) * 1e6,
            "p50_us": quantiles[49] * 1e6, "p90_us": quantiles[89] * 1e6, "p99_us": quantiles[98] * 1e6}
