"""A bounded soak through the edge, or an overload, on the embedded store; everything on 127.0.0.1.

    .venv/bin/python -m bench.soak [--minutes 10] [--rate 50] [--users 4] [--warmup-seconds 30] [--sample-seconds 15]
    .venv/bin/python -m bench.soak --overload [--capacity-concurrency 4] [--capacity-seconds 15] [--factor 4]
                                              [--overload-seconds 30] [--no-compare]

Soak: starts accounts, catalog, orders and the edge (harness/stack.py: gunicorn, 2 workers x 8
threads), registers users and a product through the edge, warms up, then for --minutes offers the shop
mix (bench/traffic.py: a product, an account, a page of orders, an order placement, in turn) at a fixed
--rate, whatever the answers. Every --sample-seconds it reads VmRSS (/proc/<pid>/status) of the edge's
gunicorn master and each worker and of each service. Prints the answers by status, the error count,
throughput, latency p50/p99 (all and per kind), and per process the RSS after the warm-up, at the end,
the growth, and the slope over the second half (least squares, MiB per minute).

Overload: measures the capacity (requests served per second by --capacity-concurrency clients sending
one request at a time), then offers --factor times that at a fixed rate for --overload-seconds, and
prints how many were refused with 503/429 and Retry-After and how fast those answers came, how many were
served and how fast, and how many got no answer within 10 s. Then, unless --no-compare, the same offered
rate on a fresh stack whose edge never refuses (EDGE_MAX_QUEUE_MS=0), for comparison.

Every phase is bounded in time; every process started here is stopped here, by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.http_client import closed_loop, open_loop  # noqa: E402
from bench.traffic import (  # noqa: E402
    ShopMix,
    answered_span,
    check_edge,
    cpu_seconds,
    ms,
    percentiles_ms,
    rss_kib,
    stack_processes,
)
from harness import servers  # noqa: E402  (the same launchers the tests use)
from harness.stack import Stack  # noqa: E402

_TOKEN_REFRESH_S = 300  # access tokens live 15 minutes
_CLIENT_TIMEOUT_S = 10.0  # the edge's default deadline


def _start(tmp: str, edge_env: dict | None = None) -> Stack:
    stack = Stack(servers.write_test_pki(pathlib.Path(tmp) / "pki"), pathlib.Path(tmp), edge_env=edge_env)
    check_edge(stack.url)
    return stack


def _stop(stack: Stack) -> None:
    try:
        stack.stop()
    except AssertionError as codes:  # a figure is still a figure; say which process did not end cleanly
        print(f"note: exit codes at stop: {codes}", file=sys.stderr)


def _by_status(outcomes) -> str:
    counts = collections.Counter(str(o.status) for o in outcomes)
    return ", ".join(f"{status}: {count}" for status, count in sorted(counts.items()))


# --- soak ------------------------------------------------------------------------------------------------

async def _soak(stack: Stack, mix: ShopMix, args) -> tuple[list, dict[str, list[tuple[float, int]]]]:
    samples: dict[str, list[tuple[float, int]]] = {}
    started = time.monotonic()

    def sample() -> None:
        minutes = (time.monotonic() - started) / 60
        for name, pid in stack_processes(stack).items():  # read again: a replaced worker shows up by its pid
            kib = rss_kib(pid)
            if kib is not None:
                samples.setdefault(name, []).append((minutes, kib))

    sample()
    load = asyncio.create_task(open_loop(stack.edge.port, mix.request, args.rate, args.minutes * 60,
                                         timeout=_CLIENT_TIMEOUT_S))
    refreshed = time.monotonic()
    while not load.done():
        await asyncio.wait({load}, timeout=args.sample_seconds)
        sample()
        if time.monotonic() - refreshed > _TOKEN_REFRESH_S:
            await asyncio.get_running_loop().run_in_executor(None, mix.refresh_tokens)
            refreshed = time.monotonic()
    return load.result(), samples


def _slope_mib_per_minute(points: list[tuple[float, int]]) -> float | None:
    second_half = [(t, kib) for t, kib in points if t >= points[-1][0] / 2]
    if len(second_half) < 2:
        return None
    return statistics.linear_regression([t for t, _ in second_half], [kib / 1024 for _, kib in second_half]).slope


def soak(args) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        stack = _start(tmp)
        try:
            mix = ShopMix.set_up(stack, args.users)
            warm = asyncio.run(open_loop(stack.edge.port, mix.request, args.rate, args.warmup_seconds))
            outcomes, samples = asyncio.run(_soak(stack, mix, args))
        finally:
            _stop(stack)
    seconds = args.minutes * 60
    errors = [o for o in outcomes if o.status != 200]
    print(f"soak: {args.minutes:g} min offering {args.rate:g} req/s (after a {args.warmup_seconds:g} s warm-up: "
          f"{_by_status(warm)}), {args.users} users, {os.cpu_count()} cores shared by clients and servers")
    print(f"answers by status: {_by_status(outcomes)}")
    print(f"errors (anything but 200): {len(errors)}")
    print(f"throughput: {sum(o.status == 200 for o in outcomes) / seconds:.1f} req/s served of "
          f"{len(outcomes) / seconds:.1f} req/s sent")
    print()
    print("| requests | count | p50 ms | p99 ms | errors |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind in ("all", *ShopMix.KINDS):
        chosen = [o for o in outcomes if kind == "all" or o.kind == kind]
        p50, p99 = percentiles_ms([o.seconds for o in chosen if o.status == 200], 50, 99)
        print(f"| {kind} | {len(chosen)} | {ms(p50)} | {ms(p99)} | {sum(o.status != 200 for o in chosen)} |")
    print()
    print(f"RSS sampled every {args.sample_seconds:g} s; start is after the warm-up")
    print("| process | start MiB | end MiB | growth MiB | growth % | slope, 2nd half, MiB/min |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, points in samples.items():
        first, last = points[0][1] / 1024, points[-1][1] / 1024
        slope = _slope_mib_per_minute(points)
        print(f"| {name} | {first:.1f} | {last:.1f} | {last - first:+.1f} | {(last - first) / first * 100:+.1f} | "
              f"{'-' if slope is None else f'{slope:+.2f}'} |")
    return 0


# --- overload --------------------------------------------------------------------------------------------

def _overload_run(args, edge_env: dict, capacity: float | None) -> dict:
    """On a fresh stack: the capacity (measured unless given), then the offered overload's outcomes and the
    CPU the edge and the services used meanwhile (in cores)."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = _start(tmp, edge_env)
        try:
            mix = ShopMix.set_up(stack, args.users)
            port = stack.edge.port
            asyncio.run(closed_loop(port, mix.request, args.capacity_concurrency, 5))  # warm
            processes = stack_processes(stack)
            edge = [pid for name, pid in processes.items() if name.startswith("edge")]
            services = [pid for name, pid in processes.items() if not name.startswith("edge")]
            edge_before = cpu_seconds(edge)
            measured = asyncio.run(closed_loop(port, mix.request, args.capacity_concurrency, args.capacity_seconds))
            served_at_capacity = sum(o.status == 200 for o in measured)
            edge_per_served = (cpu_seconds(edge) - edge_before) / max(served_at_capacity, 1)
            if capacity is None:
                capacity = served_at_capacity / args.capacity_seconds
            before, started = (cpu_seconds(edge), cpu_seconds(services)), time.monotonic()
            offered = asyncio.run(open_loop(port, mix.request, args.factor * capacity, args.overload_seconds,
                                            timeout=_CLIENT_TIMEOUT_S))
            wall = time.monotonic() - started
            edge_seconds = cpu_seconds(edge) - before[0]
            cores = (edge_seconds / wall, (cpu_seconds(services) - before[1]) / wall)
        finally:
            _stop(stack)
    return {"capacity": capacity, "measured": measured, "offered": offered, "cores": cores,
            "edge_per_served": edge_per_served, "edge_seconds": edge_seconds}


def _refusal_cost(run: dict) -> float | None:
    """The edge's CPU seconds per refusal during the overload, if each request it served there cost what
    one did at capacity: (edge CPU - served x CPU per served) / refused."""
    served = sum(o.status == 200 for o in run["offered"])
    refused = sum(o.status in (429, 503) for o in run["offered"])
    return (run["edge_seconds"] - served * run["edge_per_served"]) / refused if refused else None


def _overload_row(name: str, rate: float, run: dict) -> str:
    outcomes = run["offered"]
    served = [o.seconds for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status in (429, 503)]
    told = [o.seconds for o in refused if o.retry_after]
    unanswered = [o for o in outcomes if not isinstance(o.status, int)]
    other = len(outcomes) - len(served) - len(refused) - len(unanswered)
    s50, s99 = percentiles_ms(served, 50, 99)
    r50, r90, r99 = percentiles_ms(told, 50, 90, 99)
    return (f"| {name} | {rate:.0f} | {len(outcomes)} | {len(served)} ({len(served) / answered_span(outcomes):.0f}/s) | "
            f"{ms(s50)} | {ms(s99)} | {len(told)} of {len(refused)} | {ms(r50)} | {ms(r90)} | {ms(r99)} | "
            f"{ms(max(told) * 1000 if told else None)} | {other} | {len(unanswered)} | "
            f"{run['cores'][0]:.2f} / {run['cores'][1]:.2f} |")


def overload(args) -> int:
    first = _overload_run(args, {}, None)
    capacity = first["capacity"]
    runs = [("refuses past 500 ms (default)", first)]
    if not args.no_compare:
        runs.append(("never refuses (EDGE_MAX_QUEUE_MS=0)", _overload_run(args, {"EDGE_MAX_QUEUE_MS": "0"}, capacity)))
    rate = args.factor * capacity
    measured = first["measured"]
    c50, c99 = percentiles_ms([o.seconds for o in measured if o.status == 200], 50, 99)
    print(f"capacity: {capacity:.0f} req/s served by {args.capacity_concurrency} clients one request at a time "
          f"for {args.capacity_seconds:g} s (p50 {ms(c50)} ms, p99 {ms(c99)} ms; {_by_status(measured)}), "
          f"{os.cpu_count()} cores shared by clients and servers")
    print(f"overload: {args.factor:g} x capacity = {rate:.0f} req/s offered at a fixed rate for {args.overload_seconds:g} s; "
          f"a request unanswered after {_CLIENT_TIMEOUT_S:g} s (connecting included) is given up; served/s is over "
          f"the time from the first request to the last answer")
    print()
    print("| edge | offered req/s | sent | served (200) | 200 p50 ms | 200 p99 ms | 503/429 with Retry-After | "
          "refused p50 ms | p90 ms | p99 ms | max ms | other answers | no answer | CPU cores edge / services |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, run in runs:
        print(_overload_row(name, rate, run))
    for name, run in runs:
        print(f"{name}: {_by_status(run['offered'])}")
    served_per_s = sum(o.status == 200 for o in first["offered"]) / answered_span(first["offered"])
    per_refusal, per_served = _refusal_cost(first), first["edge_per_served"]
    print(f"\ngoodput under overload, refusing: {served_per_s:.0f} req/s served = {served_per_s / capacity:.0%} of capacity; "
          f"edge CPU per served request at capacity {per_served * 1e3:.2f} ms, per refusal under overload about "
          + ("-" if per_refusal is None else f"{per_refusal * 1e3:.2f} ms ({per_refusal / per_served:.0%} of a served one)"))
    if args.out:
        args.out.write_text(json.dumps({"capacity": capacity, "served_per_second": served_per_s,
                                        "goodput_share": served_per_s / capacity, "edge_ms_per_served": per_served * 1e3,
                                        "edge_ms_per_refusal": None if per_refusal is None else per_refusal * 1e3}) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length, after the warm-up")
    parser.add_argument("--rate", type=float, default=50.0, help="soak: requests offered per second")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--warmup-seconds", type=float, default=30.0)
    parser.add_argument("--sample-seconds", type=float, default=15.0, help="soak: RSS sampling interval")
    parser.add_argument("--overload", action="store_true", help="measure capacity, then offer a multiple of it")
    parser.add_argument("--capacity-concurrency", type=int, default=4)
    parser.add_argument("--capacity-seconds", type=float, default=15.0)
    parser.add_argument("--factor", type=float, default=4.0, help="overload: offered rate / capacity")
    parser.add_argument("--overload-seconds", type=float, default=30.0)
    parser.add_argument("--no-compare", action="store_true", help="overload: skip the run with refusing off")
    parser.add_argument("--out", type=pathlib.Path, help="overload: also write the goodput and refusal cost as JSON here")
    args = parser.parse_args()
    for name in ("minutes", "rate", "users", "sample_seconds", "capacity_concurrency", "capacity_seconds", "factor",
                 "overload_seconds"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup_seconds < 0:
        parser.error("--warmup-seconds must not be negative")
    return overload(args) if args.overload else soak(args)


if __name__ == "__main__":
    sys.exit(main())
