"""What a refusal costs the edge against a served request, measured with wrk. Figures, not assertions.

    .venv/bin/python -m bench.refusals [--seconds 8] [--rounds 3] [--conc 64] [--sample-ratio 0.1] [--out FILE]

The shop on the embedded store behind an edge of one worker with one thread and a queue budget of
1 ms (EDGE_WORKERS=1, EDGE_THREADS=1, EDGE_MAX_QUEUE_MS=1), spans exported to a Jaeger started for the
run at --sample-ratio (production's 0.1 by default), and one authenticated GET /v1/accounts/{id}:

  served    one wrk connection: each request finds the thread free and is served; edge CPU per request
  overload  --conc connections: nearly every request waits for the thread past 1 ms and is refused;
            the few served are charged at the served cost, the rest of the edge's CPU divided by the
            refusals is the cost of one

Rounds alternate the two. The edge's CPU is its master's and worker's user+system time (/proc).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.side_by_side import _WRK_SCRIPT, family, run_wrk, wait_until_quiet  # noqa: E402
from bench.traffic import cpu_seconds  # noqa: E402
from harness import servers  # noqa: E402
from harness.stack import Stack  # noqa: E402
from tools.jaeger import Jaeger, JaegerPorts  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--conc", type=int, default=64)
    parser.add_argument("--sample-ratio", default="0.1")
    parser.add_argument("--out", type=pathlib.Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    served_costs, refusal_costs = [], []
    with tempfile.TemporaryDirectory() as tmp, Jaeger(JaegerPorts.free(), log_path=pathlib.Path(tmp) / "jaeger.log") as jaeger:
        telemetry = jaeger.exporter_env() | {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                                             "OTEL_TRACES_SAMPLER_ARG": args.sample_ratio}
        stack = Stack(servers.write_test_pki(pathlib.Path(tmp) / "pki"), pathlib.Path(tmp), telemetry_env=telemetry,
                      edge_env={"EDGE_WORKERS": "1", "EDGE_THREADS": "1", "EDGE_MAX_QUEUE_MS": "1"})
        try:
            account = stack.register("benchuser")
            token_file, script = pathlib.Path(tmp) / "token", pathlib.Path(tmp) / "get.lua"
            script.write_text(_WRK_SCRIPT % {"token_file": token_file})
            token_file.write_text(stack.token("benchuser")["access_token"] + "\n")
            url, edge = f"{stack.url}/v1/accounts/{account['id']}", family(stack.edge.process.pid)
            run_wrk(url, script, 1, 2)  # warm
            for round_ in range(args.rounds):
                for phase in ("served", "overload") if round_ % 2 == 0 else ("overload", "served"):
                    wait_until_quiet()
                    before = cpu_seconds(edge)
                    result = run_wrk(url, script, 1 if phase == "served" else args.conc, args.seconds)
                    spent = cpu_seconds(edge) - before
                    refused = result["non2xx"]
                    served = result["requests"] - refused
                    if phase == "served":
                        served_costs.append(spent / result["requests"])
                        print(f"round {round_ + 1} served:   {result['requests']} requests, "
                              f"{spent / result['requests'] * 1e3:.3f} ms of edge CPU each", flush=True)
                    else:
                        cost = statistics.median(served_costs) if served_costs else 0.0
                        per_refusal = (spent - served * cost) / max(refused, 1)
                        refusal_costs.append(per_refusal)
                        print(f"round {round_ + 1} overload: {refused} refused, {served} served, "
                              f"{per_refusal * 1e3:.3f} ms of edge CPU per refusal", flush=True)
        finally:
            stack.stop()
    served, refusal = statistics.median(served_costs), statistics.median(refusal_costs)
    print(f"\nedge CPU per served request {served * 1e3:.3f} ms, per refusal {refusal * 1e3:.3f} ms: "
          f"a refusal costs {refusal / served:.0%} of a served request (medians of {args.rounds} rounds, "
          f"sampling {args.sample_ratio})")
    if args.out:
        args.out.write_text(json.dumps({"edge_ms_per_served": served * 1e3, "edge_ms_per_refusal": refusal * 1e3}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
