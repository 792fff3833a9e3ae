"""The edge side by side with its baselines and a Go grpc-gateway, in front of the same accounts service, in one run.

    .venv/bin/python -m bench.side_by_side [--rounds 3] [--seconds 10] [--warmup 3] [--conc 16,64]
                                           [--sample-ratio 1.0,0.1] [--variants E,N,G0,G1,A,B]
                                           [--no-telemetry] [--gateway /path/to/accounts-gateway | --no-gateway]

One authenticated GET /v1/accounts/{id} (ES256 bearer token, scope and owner checked) driven by wrk
(2 threads, keep-alive) at each concurrency, against:

  E   the edge (gunicorn, EDGE_WORKERS x EDGE_THREADS): token verified at the edge and again in accounts
  N   a naive Flask + PyJWT + grpcio proxy of the same call (bench/naive_proxy.py) under plain gunicorn
      gthread with the edge's workers and threads, no telemetry: the floor of a Python edge
  G0  a Go grpc-gateway v2 generated from our accounts.proto (bench/gateway), no token check of its own
  G1  the same gateway verifying the ES256 token and the method's scope/owner rule first

and, without HTTP, GetAccount called over mTLS by two gRPC client processes (bench/grpc_load.py):

  A   the accounts service itself
  B   a bare grpcio servicer doing the same store read (bench/bare_accounts.py): the floor of a service

E and A are measured at each --sample-ratio (each ratio its own stack, E@0.1 and A@0.1 in the table;
the first ratio's names carry no suffix); N, G0, G1 and B stand in front of the first ratio's accounts.

The gateway is built from bench/gateway by tools/gateway.py (once; later runs find it in the cache);
--gateway runs another binary with the same flags instead. Variants are interleaved round by round,
each after the machine has been quiet for 3 s. CPU is user+system time from /proc of the serving
processes (the edge's master and every worker, N's master and workers, the gateway, accounts for A,
the bare servicer for B) and of the accounts process behind them, divided by the requests served; the
split across edge workers shows how evenly gunicorn spreads connections. With telemetry (the default)
the stacks' processes export their spans over OTLP to a Jaeger started for the run (tools/jaeger), as
in production. The table ends with the ratios the performance goals are stated in.
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

from bench import grpc_load  # noqa: E402
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
    out = subprocess.run(["wrk", f"-t{min(2, conc)}", f"-c{conc}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    line = next((line for line in out.splitlines() if line.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out[-800:]}")
    return json.loads(line[8:])


def measure(name: str, drive, served, accounts: int, conc: int, seconds: float, warmup: float) -> dict:
    """One variant at one concurrency: `drive(conc, seconds)` makes the load and returns wrk's figures."""
    quiet = wait_until_quiet()
    drive(conc, warmup)
    served = served() if callable(served) else served  # a gunicorn master's workers, forked after it said it listens
    before = {pid: cpu_seconds([pid]) for pid in [*served, accounts]}
    result = drive(conc, seconds)
    spent = {pid: cpu_seconds([pid]) - before[pid] for pid in [*served, accounts]}
    n = max(result["requests"], 1)
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


ORDER = ("E", "N", "G0", "G1", "A", "B")  # in the table; E and A also once per further sampling ratio


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def summarize(rows: list[dict], ratios: list[float]) -> str:
    names = [n for base in ORDER for n in ([base] + [f"{base}@{r:g}" for r in ratios[1:]] if base in "EA" else [base])]
    lines = ["| variant | conc | req/s | p50 ms | p99 ms | serving CPU us/req | accounts CPU us/req | busiest edge worker | errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    cost: dict[tuple[str, int], float] = {}
    for conc in sorted({r["conc"] for r in rows}):
        for name in names:
            rs = [r for r in rows if r["variant"] == name and r["conc"] == conc]
            if not rs:
                continue
            share = _med([r["busiest_worker_share"] for r in rs])
            cost[name, conc] = _med([r["served_us_per_req"] for r in rs])
            lines.append(f"| {name} | {conc} | {_med([r['rps'] for r in rs]):.0f} | {_med([r['p50_us'] for r in rs]) / 1e3:.2f} | "
                         f"{_med([r['p99_us'] for r in rs]) / 1e3:.2f} | {cost[name, conc]:.0f} | "
                         f"{_med([r['accounts_us_per_req'] for r in rs]):.0f} | "
                         f"{'-' if share != share else f'{share:.0%}'} | {sum(r['errors'] + r['non2xx'] for r in rs)} |")
    lines += ["", "Ratios of serving CPU per request (medians above), as the performance goals state them:", "",
              "| ratio | conc | value |", "| --- | ---: | ---: |"]
    for conc in sorted({r["conc"] for r in rows}):
        for suffix, ratio in zip(["", *[f"@{r:g}" for r in ratios[1:]]], ratios, strict=True):
            for top, bottom in (("E", "N"), ("E", "G1"), ("E", "G0"), ("A", "B")):
                if cost.get((top + suffix, conc)) and cost.get((bottom, conc)):
                    lines.append(f"| {top}/{bottom} at sampling {ratio:g} | {conc} | "
                                 f"{cost[top + suffix, conc] / cost[bottom, conc]:.2f} |")
            if ("A" + suffix, conc) in cost:
                lines.append(f"| A (GetAccount) ms of CPU at sampling {ratio:g} | {conc} | {cost['A' + suffix, conc] / 1e3:.2f} |")
    return "\n".join(lines)


def _http(url: str, script: pathlib.Path):
    return lambda conc, seconds: run_wrk(url, script, conc, seconds)


def _grpc(port: int, pki_dir: pathlib.Path, token_file: pathlib.Path, account_id: str):
    return lambda conc, seconds: grpc_load.run(f"127.0.0.1:{port}", pki_dir, token_file.read_text().strip(), account_id,
                                               conc, seconds)


def _naive_proxy(stack: Stack, pki_dir: pathlib.Path, env: dict[str, str]) -> servers.ServiceProcess:
    """bench/naive_proxy.py under plain gunicorn gthread, as many workers and threads as the edge."""
    return servers.ServiceProcess("gunicorn", {
        "NAIVE_ACCOUNTS_TARGET": f"127.0.0.1:{stack.accounts.port}", "TLS_DIR": str(pki_dir),
        "TOKEN_ISSUER": servers.ISSUER, "TOKEN_AUDIENCE": servers.AUDIENCE,
    }, args=("-k", "gthread", "-w", env.get("EDGE_WORKERS", "2"), "--threads", env.get("EDGE_THREADS", "8"),
             "--keep-alive", "5", "-b", "127.0.0.1:0", "bench.naive_proxy:app"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--gateway", help="a gateway binary taking bench/gateway's flags (default: build bench/gateway)")
    choice.add_argument("--no-gateway", action="store_true", help="no G0, G1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--conc", default="16,64")
    parser.add_argument("--variants", default=",".join(ORDER), help=f"a subset of {','.join(ORDER)}")
    parser.add_argument("--no-telemetry", action="store_true", help="no span export (the SDK still runs)")
    parser.add_argument("--sample-ratio", default="1.0",
                        help="trace this fraction of requests (parentbased_traceidratio); several, comma-separated, "
                             "measure E and A at each")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the stack, e.g. EDGE_THREADS=4 (repeatable)")
    parser.add_argument("--out", type=pathlib.Path, help="also write every measurement as JSON lines here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    wanted = set(args.variants.split(","))
    if wanted - set(ORDER):
        parser.error(f"--variants: unknown {sorted(wanted - set(ORDER))}")
    ratios = [float(r) for r in args.sample_ratio.split(",")]
    extra_env = dict(item.split("=", 1) for item in args.env)
    if args.no_gateway:
        wanted -= {"G0", "G1"}
    binary = args.gateway or str(gateway_build.ensure()) if wanted & {"G0", "G1"} else None
    rows: list[dict] = []
    stacks: list[Stack] = []
    helpers: list = []  # gateways (Popen) and ServiceProcesses started here
    with tempfile.TemporaryDirectory() as tmp, Jaeger(JaegerPorts.free(), log_path=pathlib.Path(tmp) / "jaeger.log") as jaeger:
        pki_dir = servers.write_test_pki(pathlib.Path(tmp) / "pki")
        variants: dict[str, tuple] = {}  # name -> (drive, serving pids, accounts pid)
        refresh = []  # (stack, token file): tokens live 15 min
        try:
            for index, ratio in enumerate(ratios):
                telemetry = {} if args.no_telemetry else jaeger.exporter_env()
                telemetry |= {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": str(ratio)}
                data = pathlib.Path(tmp) / f"stack{index}"
                data.mkdir()
                stack = Stack(pki_dir, data, telemetry_env=telemetry | extra_env)
                stacks.append(stack)
                account = stack.register("benchuser")
                token_file, script = data / "token", data / "get.lua"
                script.write_text(_WRK_SCRIPT % {"token_file": token_file})
                token_file.write_text(stack.token("benchuser")["access_token"] + "\n")
                refresh.append((stack, token_file))
                suffix, accounts = ("" if index == 0 else f"@{ratio:g}"), stack.accounts.process.pid
                path = f"/v1/accounts/{account['id']}"
                variants["E" + suffix] = (_http(stack.url + path, script), family(stack.edge.process.pid), accounts)
                variants["A" + suffix] = (_grpc(stack.accounts.port, pki_dir, token_file, account["id"]), [accounts], accounts)
                if index:
                    continue
                if "N" in wanted:
                    naive = _naive_proxy(stack, pki_dir, extra_env)
                    helpers.append(naive)
                    variants["N"] = (_http(f"http://127.0.0.1:{naive.port}{path}", script),
                                    lambda pid=naive.process.pid: family(pid), accounts)
                if "B" in wanted:
                    bare = servers.ServiceProcess("bench.bare_accounts", stack.env("accounts"))
                    helpers.append(bare)
                    variants["B"] = (_grpc(bare.port, pki_dir, token_file, account["id"]), [bare.process.pid], bare.process.pid)
                for name, jwt in (("G0", False), ("G1", True)):
                    if name in wanted:
                        port = servers.free_port()
                        gateway = start_gateway(binary, pki_dir, stack.accounts.port, port, jwt, pathlib.Path(tmp) / f"{name}.log")
                        helpers.append(gateway)
                        variants[name] = (_http(f"http://127.0.0.1:{port}{path}", script), [gateway.pid], accounts)
            variants = {name: v for name, v in variants.items() if name.split("@")[0] in wanted}
            for conc in map(int, args.conc.split(",")):
                for round_ in range(args.rounds):
                    for stack, token_file in refresh:
                        token_file.write_text(stack.token("benchuser")["access_token"] + "\n")
                    order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
                    for name in order:
                        drive, served, accounts = variants[name]
                        row = measure(name, drive, served, accounts, conc, args.seconds, args.warmup)
                        rows.append(row)
                        print(f"c{conc} round {round_ + 1} {name:<6} {row['rps']:7.0f} req/s  p50 {row['p50_us'] / 1e3:6.2f} ms  "
                              f"p99 {row['p99_us'] / 1e3:6.2f} ms  serving {row['served_us_per_req']:5.0f} us/req  "
                              f"accounts {row['accounts_us_per_req']:5.0f} us/req  errors {row['errors'] + row['non2xx']}",
                              flush=True)
        finally:
            for helper in helpers:
                if isinstance(helper, subprocess.Popen):
                    helper.terminate()
                    helper.wait(10)
                else:
                    helper.stop()
            for stack in stacks:
                stack.stop()
    if args.out:
        args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"\n{os.cpu_count()} cores; the load clients, the servers and Jaeger share them; "
          f"{'no span export' if args.no_telemetry else 'spans exported over OTLP'}; sampling {args.sample_ratio}; "
          f"extra env {args.env or 'none'}\n")
    print(summarize(rows, ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
