"""How replicas of one service share load, and what losing or adding one under load costs.

    .venv/bin/python -m bench.replicas [--replicas 3] [--concurrency 16] [--seconds 20] \
        [--connection-age SECONDS] [--store embedded|cassandra] [--out FILE]

Starts the shop (harness/stack.py) with --replicas catalog replicas behind one DNS name, as
Kubernetes and Compose publish a service: replica i listens on 127.0.0.<i+1>, the edge and orders
dial `catalog:<port>` through a DNS server of the stack's own (harness/dns.py) and balance
round-robin over what it answers (runtime/channels.py). --concurrency clients drive the shop's mix
through the edge in a closed loop (bench/traffic.py: GET product, GET account, GET orders, POST
order) for the whole run, while this script, in phases of --seconds:

1. steady: each replica's share of the catalog calls (from its own Prometheus counter
   grpc_server_handled_total), and the largest deviation from an equal share;
2. kill: SIGKILL the last replica (calls on it are cut; its address stays in DNS, as it does until
   Kubernetes sees the pod is gone), then take its address out of the name after 5 s; every answer
   that was not a 200 in the phase, by kind and status (reads are retried by the channel, within its
   retry budget; an order whose ReserveStock was cut is refused 503 and its stock given back);
3. add: start a new replica and publish its address; seconds until it takes its first call, and
   until its share in a one-second window is within 15 % of an equal share; then the shares over the
   rest of the phase (the answers are counted over the whole phase).

Callers find the new address when they next resolve the name: when a connection of theirs ends,
at the latest at the servers' GRPC_MAX_CONNECTION_AGE_SECONDS (--connection-age; the services'
default if not given). Writes the figures as JSON to --out (default .artifacts/bench/replicas.json).

Every process started here is stopped here, by PID; all traffic stays on 127.0.0.x.
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
import signal
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.costs import store_settings  # noqa: E402
from bench.http_client import Outcome, closed_loop  # noqa: E402
from bench.traffic import ShopMix, check_edge, ms, percentiles_ms  # noqa: E402
from harness import servers  # noqa: E402
from harness.stack import CallsPerReplica, Stack  # noqa: E402

SERVICE = "catalog"
WITHDRAW_AFTER_SECONDS = 5.0  # a killed replica's address stays in the name this long
EQUAL_WITHIN = 0.15           # a share within 15 % of an equal one is "its share"


def shares(seen: dict[str, float]) -> dict:
    total = sum(seen.values())
    by_host = {host: round(count / total, 3) if total else 0.0 for host, count in sorted(seen.items())}
    equal = 1 / len(seen) if seen else 0.0
    worst = max((abs(share - equal) / equal for share in by_host.values()), default=0.0)
    return {"calls": int(total), "shares": by_host, "largest_deviation": round(worst, 3)}


class Traffic:
    """The closed loop, on a thread of its own for the whole run."""

    def __init__(self, port: int, mix: ShopMix, concurrency: int, seconds: float):
        self.outcomes: list[Outcome] = []
        self._thread = threading.Thread(target=lambda: self.outcomes.extend(
            asyncio.run(closed_loop(port, mix.request, concurrency, seconds))), daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._thread.join()


def _answers(outcomes: list[Outcome], start: float, end: float) -> dict:
    sent = [o for o in outcomes if start <= o.sent_at < end]
    served = [o for o in sent if o.status == 200]
    unclean = collections.Counter(f"{o.kind} {o.status}{'' if o.retry_after else ' (no Retry-After)'}"
                                  for o in sent if o.status != 200)
    p50, p99 = percentiles_ms([o.seconds for o in served], 50, 99)
    return {"sent": len(sent), "served": len(served), "per_second": round(len(served) / (end - start), 1),
            "p50_ms": round(p50 or 0, 1), "p99_ms": round(p99 or 0, 1), "not_served": dict(unclean)}


def _until_its_share(added, counts: CallsPerReplica, limit: float) -> tuple[float | None, float | None]:
    """Seconds from publishing `added` to its first call, and to an equal share (within 15 %) in a 1 s window."""
    published, first, equal_at = time.monotonic(), None, None
    counts.since_last()
    while time.monotonic() - published < limit and equal_at is None:
        time.sleep(1.0)
        window = counts.since_last()
        if first is None and window.get(added.host, 0) > 0:
            first = time.monotonic() - published
        live = len(window)
        if first is not None and shares(window)["shares"].get(added.host, 0) >= (1 - EQUAL_WITHIN) / live:
            equal_at = time.monotonic() - published
    return (round(first, 1) if first is not None else None), (round(equal_at, 1) if equal_at is not None else None)


def run(args) -> dict:
    figures: dict = {
        "command": "python -m bench.replicas " + shlex.join(sys.argv[1:]),
        "measured": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
        "cores": os.cpu_count(), "store": args.store, "replicas": args.replicas, "concurrency": args.concurrency,
        "connection_age_seconds": args.connection_age, "phases": {},
    }
    age = {"GRPC_MAX_CONNECTION_AGE_SECONDS": str(args.connection_age)} if args.connection_age else {}
    with tempfile.TemporaryDirectory() as tmp, store_settings(args.store) as (store_env, _):
        stack = Stack(servers.write_test_pki(pathlib.Path(tmp) / "pki"), pathlib.Path(tmp), store_env=store_env,
                      catalog_replicas=args.replicas, metrics=True, dns=True, service_env={SERVICE: age})
        try:
            check_edge(stack.url)
            mix, counts = ShopMix.set_up(stack, users=args.concurrency), CallsPerReplica(stack, SERVICE, "CatalogService")
            phase = args.seconds
            with Traffic(stack.edge.port, mix, args.concurrency, 3 * phase + 10) as traffic:
                time.sleep(3)  # warm: every worker has its channels
                counts.since_last()
                start = time.monotonic()
                time.sleep(phase)
                figures["phases"]["steady"] = {**shares(counts.since_last()), "window": (start, time.monotonic())}

                start, killed = time.monotonic(), stack.catalogs[-1]
                killed.stop(signal.SIGKILL)
                time.sleep(WITHDRAW_AFTER_SECONDS)
                stack.withdraw(SERVICE, killed)
                time.sleep(max(0.0, phase - WITHDRAW_AFTER_SECONDS))
                figures["phases"]["kill"] = {**shares(counts.since_last()), "window": (start, time.monotonic())}

                start = time.monotonic()
                added = stack.add_replica(SERVICE)
                first, equal = _until_its_share(added, CallsPerReplica(stack, SERVICE, "CatalogService"), limit=phase)
                counts.since_last()  # the shares once it has been found: over the rest of the phase (5 s at least)
                time.sleep(max(5.0, phase - (time.monotonic() - start)))
                figures["phases"]["add"] = {"first_call_s": first, "equal_share_s": equal, **shares(counts.since_last()),
                                            "window": (start, time.monotonic())}
            for phase_figures in figures["phases"].values():  # the answers, now that every one is in
                phase_figures.update(_answers(traffic.outcomes, *phase_figures.pop("window")))
            stack.processes[SERVICE].remove(killed)  # gone for good: not stopped again below
        finally:
            with contextlib.suppress(AssertionError):  # a figure is still a figure if a process exits unclean
                stack.stop()
    return figures


def _print(figures: dict) -> None:
    for name, phase in figures["phases"].items():
        extra = (f"  first call {phase['first_call_s']} s, equal share {phase['equal_share_s']} s"
                 if name == "add" else "")
        print(f"{name:7} {phase['per_second']:6.1f}/s p50 {ms(phase['p50_ms'])} ms p99 {ms(phase['p99_ms'])} ms  "
              f"catalog calls {phase['calls']} shares {phase['shares']} (largest deviation "
              f"{phase['largest_deviation']:.0%})  not served {phase['not_served'] or 0}{extra}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="each phase's length")
    parser.add_argument("--connection-age", type=float, help="the catalog servers' GRPC_MAX_CONNECTION_AGE_SECONDS")
    parser.add_argument("--store", choices=("embedded", "cassandra"), default="embedded")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / ".artifacts" / "bench" / "replicas.json")
    args = parser.parse_args()
    figures = run(args)
    _print(figures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
