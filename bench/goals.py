"""`make bench`: the performance goals measured side by side in one run, and the table of where each stands.

    .venv/bin/python -m bench.goals [--out-dir .artifacts/bench] [--no-cassandra]

Runs, one after another, each in a process of its own writing JSON into --out-dir:

  1. bench.side_by_side: one authenticated GET through the edge (E), the naive Flask proxy (N), the Go
     gateway without and with its JWT check (G0, G1), and GetAccount on accounts (A) and on a bare
     grpcio servicer (B); E and A at the production sampling ratio 0.1 and with every request traced
     (E@1, A@1); 16 clients, 2 rounds of 5 s, interleaved;
  2. bench.span_cost: one recorded span made and exported to Jaeger, the SDK's span and exporter
     against the project's;
  3. bench.refusals: the edge's CPU for a refused request against a served one (wrk);
     bench.soak --overload: the shop mix at four times the edge's capacity, refusing past the budget;
  4. bench.costs: order placements, 16 clients, on the embedded store, then (unless --no-cassandra) on
     a three-node Cassandra (RF 3, LOCAL_QUORUM, SERIAL).

Then prints each goal of the performance issue with what was measured, the target and whether it is
met. Ratios are of figures from the same run on the same machine; the machine's cores are shared by
the load, the servers, Jaeger and Cassandra, so an absolute figure is this machine's, a ratio less so.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The figure the orders goal multiplies: orders/s on a three-node Cassandra before the work
# (docs/capacity/costs-cassandra.json as first committed, 2026-12-03, bench.costs, 8 clients).
ORDERS_CASSANDRA_BEFORE = 5.8


def _run(args: list[str]) -> float:
    """Runs `python -m <args>` with its output shown; returns the seconds it took."""
    started = time.monotonic()
    print(f"\n$ python -m {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", *args], cwd=ROOT, check=True)
    return time.monotonic() - started


def _side_by_side(path: pathlib.Path) -> dict[str, float]:
    """Median serving CPU (us per request) of each variant."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {name: statistics.median(r["served_us_per_req"] for r in rows if r["variant"] == name)
            for name in {r["variant"] for r in rows}}


def _row(goal: str, measured: float | None, target: str, met: bool | None, unit: str = "") -> str:
    shown = "-" if measured is None else f"{measured:.2f}{unit}"
    return f"| {goal} | {shown} | {target} | {'-' if met is None else 'yes' if met else 'no'} |"


def table(out: pathlib.Path, seconds: float) -> str:
    cpu = _side_by_side(out / "side_by_side.jsonl")
    spans = json.loads((out / "span_cost.json").read_text())
    overload = json.loads((out / "overload.json").read_text())
    refusals = json.loads((out / "refusals.json").read_text())
    embedded = json.loads((out / "orders-embedded.json").read_text())["kinds"]["POST order"]
    cassandra_file = out / "orders-cassandra.json"
    cassandra = json.loads(cassandra_file.read_text())["kinds"]["POST order"] if cassandra_file.exists() else None
    per_span = spans["us_per_span"]
    export = {mode: per_span[mode] - per_span[f"made {mode}"] for mode in ("ours", "sdk")}
    refusal_share = refusals["edge_ms_per_refusal"] / refusals["edge_ms_per_served"]
    lines = ["| goal | measured | target | met |", "| --- | ---: | ---: | --- |",
             _row("1. edge CPU / naive proxy, sampling 0.1 (E/N)", cpu["E"] / cpu["N"], "<= 0.8", cpu["E"] / cpu["N"] <= 0.8, "x"),
             _row("1. edge CPU / naive proxy, every request traced (E@1/N)", cpu["E@1"] / cpu["N"], "<= 1.2",
                  cpu["E@1"] / cpu["N"] <= 1.2, "x"),
             _row("1. edge CPU / Go gateway with JWT, sampling 0.1 (E/G1)", cpu["E"] / cpu["G1"], "<= 3", cpu["E"] / cpu["G1"] <= 3, "x"),
             _row("2. accounts GetAccount CPU, sampling 0.1 (A)", cpu["A"] / 1e3, "<= 0.8 ms", cpu["A"] <= 800, " ms"),
             _row("2. accounts / bare grpcio servicer, sampling 0.1 (A/B)", cpu["A"] / cpu["B"], "<= 1.2", cpu["A"] / cpu["B"] <= 1.2, "x"),
             _row("3. a recorded span, made and exported: ours / the SDK's", per_span["ours"] / per_span["sdk"], "<= 0.5",
                  per_span["ours"] / per_span["sdk"] <= 0.5, "x"),
             _row("3. its export alone (after making): ours / the SDK's", export["ours"] / export["sdk"],
                  "<= 0.5", export["ours"] / export["sdk"] <= 0.5, "x"),
             _row("4. edge CPU of a refusal / of a served request, sampling 0.1", refusal_share, "<= 0.1",
                  refusal_share <= 0.1, "x"),
             _row("4. requests served at 4x capacity / capacity", overload["goodput_share"], ">= 0.9",
                  overload["goodput_share"] >= 0.9, "x"),
             _row("5. orders/s on the embedded store, 16 clients", embedded["per_second"], ">= 200", embedded["per_second"] >= 200),
             ]
    if cassandra is not None:
        lines += [_row(f"5. orders/s on Cassandra, 16 clients / {ORDERS_CASSANDRA_BEFORE} before",
                       cassandra["per_second"] / ORDERS_CASSANDRA_BEFORE, ">= 3", cassandra["per_second"] / ORDERS_CASSANDRA_BEFORE >= 3, "x"),
                  _row("5. order p99 on Cassandra, 16 clients", cassandra["p99_ms"], "<= 500 ms", cassandra["p99_ms"] <= 500, " ms")]
    lines.append(_row("6. make bench, minutes", seconds / 60, "< 10", seconds < 600))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=pathlib.Path, default=ROOT / ".artifacts" / "bench")
    parser.add_argument("--no-cassandra", action="store_true", help="orders on the embedded store only")
    args = parser.parse_args()
    out = args.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "orders-cassandra.json").unlink(missing_ok=True)
    started = time.monotonic()
    _run(["bench.side_by_side", "--conc", "16", "--rounds", "2", "--seconds", "5", "--warmup", "2",
          "--sample-ratio", "0.1,1", "--out", str(out / "side_by_side.jsonl")])
    _run(["bench.span_cost", "--spans", "10000", "--rounds", "3", "--out", str(out / "span_cost.json")])
    _run(["bench.refusals", "--seconds", "5", "--out", str(out / "refusals.json")])
    _run(["bench.soak", "--overload", "--no-compare", "--capacity-seconds", "8", "--overload-seconds", "15",
          "--out", str(out / "overload.json")])
    _run(["bench.costs", "--kind", "POST order", "--concurrency", "16", "--seconds", "10",
          "--out", str(out / "orders-embedded.json")])
    if not args.no_cassandra:
        _run(["bench.costs", "--store", "cassandra", "--kind", "POST order", "--concurrency", "16", "--seconds", "15",
              "--out", str(out / "orders-cassandra.json")])
    seconds = time.monotonic() - started
    print(f"\nThe performance goals, measured in this run ({seconds / 60:.1f} min; figures in {out}):\n")
    print(table(out, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
