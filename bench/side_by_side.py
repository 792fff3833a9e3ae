"""The edge side by side with a Go grpc-gateway in front of the same accounts service, in one run.

    .venv/bin/python -m bench.side_by_side [--rounds 3] [--seconds 10] [--warmup 3] [--conc 16,64]
                                           [--no-telemetry] [--gateway /path/to/accounts-gateway | --no-gateway]

One authenticated GET /v1/accounts/{id} (ES256 bearer token, scope and owner checked) driven by wrk
(2 threads, keep-alive) at each concurrency, against:

  E   the edge (gunicorn, EDGE_WORKERS x EDGE_THREADS): token verified at the edge and again in accounts
  G0  a Go grpc-gateway v2 generated from our accounts.proto (bench/gateway), no token check of its own
  G1  the same gateway verifying the ES256 token and the method's scope/owner rule first

The gateway is built from bench/gateway by tools/gateway.py (once; later runs find it in the cache);
--gateway runs another binary with the same flags instead. Variants are interleaved round by round,
each after the machine has been quiet for 3 s. CPU is user+system time from /proc of the serving
processes (the edge's master and every worker, or the gateway) and of accounts, divided by the
requests served; the split across edge workers shows how evenly gunicorn spreads connections. With
telemetry (the default) every process but the gateway exports its spans over OTLP to a Jaeger
started for the run (tools/jaeger), as in production.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.traffic import cpu_seconds  # noqa: E402
from harness import servers  # noqa: E402  (the same launchers the tests use)
from harness.stack import Stack  # noqa: E402
from tools import gateway as gateway_build  # noqa: E402
from tools.jaeger import Jaeger, JaegerPorts  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
_WRK_SCRIPT = """
local f = io.open("%(token_file)s", "r")
local tok = f:read("*l")
f:close()
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. tok
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%%d,"duration_us":%%d,"errors":%%d,"non2xx":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99)))
end
"""


def family(pid: int) -> list[int]:
    """The process and its direct children (a gunicorn master and its workers)."""
    children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def machine_busy_seconds() -> float:
    with open("/proc/stat") as stat:
        values = list(map(int, stat.readline().split()[1:9]))
    return (sum(values) - values[3] - values[4]) / TICKS


def wait_until_quiet(max_busy_cores: float = 0.3, max_wait: float = 120) -> float:
    """Waits (bounded) for 3 s in which the machine uses less than `max_busy_cores`; returns what it saw."""
    started = time.monotonic()
    while True:
        before = machine_busy_seconds()
        time.sleep(3)
        busy = (machine_busy_seconds() - before) / 3
        if busy <= max_busy_cores or time.monotonic() - started > max_wait:
            return busy


def run_wrk(url: str, script: pathlib.Path, conc: int, seconds: float) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{conc}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    line = next((line for line in out.splitlines() if line.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out[-800:]}")
    return json.loads(line[8:])


def measure(name: str, url: str, served: list[int], accounts: int, script, conc: int, seconds: float,
            warmup: float) -> dict:
    quiet = wait_until_quiet()
    run_wrk(url, script, conc, warmup)
    before = {pid: cpu_seconds([pid]) for pid in [*served, accounts]}
    result = run_wrk(url, script, conc, seconds)
    spent = {pid: cpu_seconds([pid]) - before[pid] for pid in [*served, accounts]}
    n = result["requests"]
    workers = sorted((spent[pid] for pid in served[1:]), reverse=True) if len(served) > 2 else []
    return {"variant": name, "conc": conc, "rps": n / (result["duration_us"] / 1e6), **result,
            "served_us_per_req": sum(spent[pid] for pid in served) / n * 1e6,
            "accounts_us_per_req": spent[accounts] / n * 1e6,
            "busiest_worker_share": workers[0] / sum(workers) if workers and sum(workers) else None,
            "quiet_cores_before": quiet}


def start_gateway(binary: str, pki_dir: pathlib.Path, accounts_port: int, port: int, jwt: bool, log: pathlib.Path):
    args = [binary, "-listen", f"127.0.0.1:{port}", "-backend", f"127.0.0.1:{accounts_port}", "-pki", str(pki_dir),
            "-servername", "localhost"]
    if jwt:  # the keys come from accounts' GetJwks over the same mTLS channel, as the edge's do
        args += ["-jwt", "-issuer", servers.ISSUER, "-audience", servers.AUDIENCE]
    with open(log, "wb") as sink:
        process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            import urllib.request

            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
        except Exception as error:  # any HTTP answer (even 404) means it listens
            if getattr(error, "code", None):
                return process
            time.sleep(0.2)
            continue
        return process
    process.kill()
    raise RuntimeError(f"gateway on {port} did not start:\n{log.read_text()[-2000:]}")


def summarize(rows: list[dict]) -> str:
    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    lines = ["| variant | conc | req/s | p50 ms | p99 ms | serving CPU us/req | accounts CPU us/req | busiest edge worker | errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for conc in sorted({r["conc"] for r in rows}):
        for name in ("E", "G0", "G1"):
            rs = [r for r in rows if r["variant"] == name and r["conc"] == conc]
            if not rs:
                continue
            share = med([r["busiest_worker_share"] for r in rs])
            lines.append(f"| {name} | {conc} | {med([r['rps'] for r in rs]):.0f} | {med([r['p50_us'] for r in rs]) / 1e3:.2f} | "
                         f"{med([r['p99_us'] for r in rs]) / 1e3:.2f} | {med([r['served_us_per_req'] for r in rs]):.0f} | "
                         f"{med([r['accounts_us_per_req'] for r in rs]):.0f} | "
                         f"{'-' if share != share else f'{share:.0%}'} | {sum(r['errors'] + r['non2xx'] for r in rs)} |")
    for conc in sorted({r["conc"] for r in rows}):
        edge = [r for r in rows if r["variant"] == "E" and r["conc"] == conc]
        for name in ("G0", "G1"):
            gw = [r for r in rows if r["variant"] == name and r["conc"] == conc]
            if edge and gw:
                lines.append(f"\nE/{name} at c{conc}: req/s {med([r['rps'] for r in edge]) / med([r['rps'] for r in gw]):.2f}, "
                             f"p99 {med([r['p99_us'] for r in edge]) / med([r['p99_us'] for r in gw]):.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--gateway", help="a gateway binary taking bench/gateway's flags (default: build bench/gateway)")
    choice.add_argument("--no-gateway", action="store_true", help="measure the edge alone")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--conc", default="16,64")
    parser.add_argument("--no-telemetry", action="store_true", help="no span export (the SDK still runs)")
    parser.add_argument("--sample-ratio", type=float, help="trace this fraction of requests (parentbased_traceidratio)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the stack, e.g. EDGE_THREADS=4 (repeatable)")
    parser.add_argument("--out", type=pathlib.Path, help="also write every measurement as JSON lines here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    binary = None if args.no_gateway else args.gateway or str(gateway_build.ensure())
    rows, gateways = [], []
    with tempfile.TemporaryDirectory() as tmp, Jaeger(JaegerPorts.free(), log_path=pathlib.Path(tmp) / "jaeger.log") as jaeger:
        telemetry = {} if args.no_telemetry else jaeger.exporter_env()
        if args.sample_ratio is not None:
            telemetry |= {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": str(args.sample_ratio)}
        telemetry |= dict(item.split("=", 1) for item in args.env)
        pki_dir = servers.write_test_pki(pathlib.Path(tmp) / "pki")
        stack = Stack(pki_dir, pathlib.Path(tmp), telemetry_env=telemetry)
        try:
            account = stack.register("benchuser")
            token_file, script = pathlib.Path(tmp) / "token", pathlib.Path(tmp) / "get.lua"
            script.write_text(_WRK_SCRIPT % {"token_file": token_file})
            variants = {"E": (stack.url, family(stack.edge.process.pid))}
            if binary:
                for name, port, jwt in (("G0", servers.free_port(), False), ("G1", servers.free_port(), True)):
                    gateway = start_gateway(binary, pki_dir, stack.accounts.port, port, jwt, pathlib.Path(tmp) / f"{name}.log")
                    gateways.append(gateway)
                    variants[name] = (f"http://127.0.0.1:{port}", [gateway.pid])
            for conc in map(int, args.conc.split(",")):
                for round_ in range(args.rounds):
                    token_file.write_text(stack.token("benchuser")["access_token"] + "\n")  # tokens live 15 min
                    order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
                    for name in order:
                        base, served = variants[name]
                        row = measure(name, f"{base}/v1/accounts/{account['id']}", served, stack.accounts.process.pid,
                                      script, conc, args.seconds, args.warmup)
                        rows.append(row)
                        print(f"c{conc} round {round_ + 1} {name:<3} {row['rps']:7.0f} req/s  p50 {row['p50_us'] / 1e3:6.2f} ms  "
                              f"p99 {row['p99_us'] / 1e3:6.2f} ms  serving {row['served_us_per_req']:5.0f} us/req  "
                              f"accounts {row['accounts_us_per_req']:5.0f} us/req  errors {row['errors'] + row['non2xx']}",
                              flush=True)
        finally:
            for gateway in gateways:
                gateway.terminate()
                gateway.wait(10)
            stack.stop()
    if args.out:
        args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"\n{os.cpu_count()} cores; wrk, the servers and Jaeger share them; "
          f"{'no span export' if args.no_telemetry else 'spans exported over OTLP'}"
          f"{'' if args.sample_ratio is None else f' (sampling {args.sample_ratio:g})'}; extra env {args.env or 'none'}\n")
    print(summarize(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
