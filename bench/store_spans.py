"""What a store statement's span costs per call. Measured, not asserted.

    .venv/bin/python -m bench.store_spans [--calls 20000] [--cassandra 127.0.0.1:9042]

Each mode runs in a process of its own (a tracer provider is set once per process):

    off        no tracer provider at all (the API's no-op tracer)
    untraced   the SDK, statements under `untraced()`: an unsampled parent, so no span is made
    dropped    the SDK with a sampler that drops every root: a non-recording span per statement
    recorded   the SDK recording every span, into a BatchSpanProcessor (as in production) whose
               exporter drops them, under a sampled parent

and times, per call, the span alone (start, attributes, end around nothing) and a real statement:
a point read on SQLite (a file in a temporary directory) and, with --cassandra, one on Cassandra
(the catalog store's product read). Prints the best of five rounds, in microseconds per call.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased  # noqa: E402

from observability import store as spans  # noqa: E402
from observability.tracing import tracer, untraced  # noqa: E402

MODES = ("off", "untraced", "dropped", "recorded")
_ROUNDS = 5


class _Dropped(SpanExporter):
    def export(self, batch):
        return SpanExportResult.SUCCESS


def _per_call_us(run, calls: int) -> float:
    best = float("inf")
    for _ in range(_ROUNDS):
        began = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, time.perf_counter() - began)
    return best / calls * 1e6


def _span_alone(statement: spans.Statement) -> None:
    span = spans.start(statement)
    if span is not None:
        span.set_attributes({"db.response.returned_rows": 1})
        span.end()


def _measure(mode: str, calls: int, cassandra: str | None) -> None:
    if mode != "off":
        provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF if mode == "dropped" else ALWAYS_ON))
        provider.add_span_processor(BatchSpanProcessor(_Dropped()))
        trace.set_tracer_provider(provider)
    from runtime.sqlite import Database
    from services.catalog.domain import Product, utcnow

    statement = spans.describe(spans.SQLITE, "bench.sqlite3", "SELECT name FROM products WHERE id = ?")
    with tempfile.TemporaryDirectory() as scratch:
        db = Database(str(pathlib.Path(scratch) / "bench.sqlite3"))
        db.execute("CREATE TABLE products (id TEXT PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO products VALUES ('p1', 'Mug')")
        figures = {"span alone": lambda: _span_alone(statement),
                   "SQLite point read": lambda: db.query("SELECT name FROM products WHERE id = ?", ("p1",))}
        if cassandra:
            from runtime.settings import CassandraSettings
            from services.catalog.store.cassandra import CassandraCatalogStore

            store = CassandraCatalogStore.connect(CassandraSettings(
                contact_points=(cassandra,), keyspace=f"bench_{uuid.uuid4().hex[:8]}", protocol_version=None,
                consistency="local_quorum", serial_consistency="serial", local_dc=None, replication_factor=1))
            now = utcnow()
            store.create_product(Product(id="p1", name="Mug", description="", currency="EUR", price_minor=1,
                                         created_at=now, updated_at=now, stock=1))
            figures["Cassandra point read"] = lambda: store._run("get_product", "p1").one()
        results = {}
        for name, run in figures.items():
            few = calls if name != "Cassandra point read" else max(200, calls // 50)
            if mode == "untraced":
                with untraced():
                    results[name] = _per_call_us(run, few)
            elif mode == "recorded":
                with tracer().start_as_current_span("bench"):
                    results[name] = _per_call_us(run, few)
            else:
                results[name] = _per_call_us(run, few)
        db.close()
        if cassandra:
            store.close()
    print("\t".join(f"{name}={value:.2f}" for name, value in results.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--cassandra", help="host:port of a Cassandra to read from too")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one mode, in this process
    args = parser.parse_args()
    if args.mode:
        _measure(args.mode, args.calls, args.cassandra)
        return
    print(f"microseconds per call, best of {_ROUNDS} rounds of {args.calls} calls (Cassandra: 1/50 of them)")
    for mode in MODES:
        command = [sys.executable, "-m", "bench.store_spans", "--mode", mode, "--calls", str(args.calls)]
        if args.cassandra:
            command += ["--cassandra", args.cassandra]
        line = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
        print(f"{mode:9} {line}")


if __name__ == "__main__":
    main()
