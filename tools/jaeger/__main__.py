"""python -m tools.jaeger run | trace TRACE_ID | traces SERVICE (see tools/jaeger/__init__.py)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import UTC, datetime, timedelta

from runtime.settings import ConfigError
from tools.jaeger.launcher import ROOT, Jaeger, JaegerPorts
from tools.jaeger.query import QueryClient, Span

_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def tree(spans: list[Span]) -> str:
    """One line per span, children indented under their parent, in start order."""
    ids = {span.span_id for span in spans}
    children: dict[str, list[Span]] = {}
    for span in sorted(spans, key=lambda s: s.start_ns):
        children.setdefault(span.parent_span_id if span.parent_span_id in ids else "", []).append(span)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for span in children.get(parent, []):
            error = "  ERROR" if span.status_code == 2 else ""
            lines.append(f"{'  ' * depth}{span.service}: {span.name} ({_KINDS.get(span.kind, span.kind)}){error}")
            walk(span.span_id, depth + 1)

    walk("", 0)
    return "\n".join(lines)


def _run(ports: JaegerPorts) -> int:
    log = ROOT / ".dev" / "jaeger.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with Jaeger(ports, log_path=log) as jaeger:
        print(f"Jaeger up in {jaeger.started_in:.1f}s: OTLP {jaeger.otlp_grpc_endpoint} (gRPC), query {jaeger.query_url}; "
              f"log {log.relative_to(ROOT)}. Ctrl-C stops it.", flush=True)
        stop: list[bool] = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        try:
            while not stop and jaeger.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Jaeger v2 for the shop: run it, or read traces from it.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="Jaeger in the foreground (ports from the JAEGER_* variables)")
    one = commands.add_parser("trace", help="print one trace as a tree")
    one.add_argument("trace_id")
    some = commands.add_parser("traces", help="the recent traces through a service")
    some.add_argument("service")
    some.add_argument("--minutes", type=int, default=60)
    args = parser.parse_args()
    try:
        ports = JaegerPorts.from_env()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if args.command == "run":
        return _run(ports)
    client = QueryClient(f"http://127.0.0.1:{ports.query_http}")
    if args.command == "trace":
        spans = client.trace(args.trace_id)
        print(tree(spans) if spans else f"Jaeger at {client.base_url} has no trace {args.trace_id}")
        return 0 if spans else 1
    now = datetime.now(UTC)
    for trace_id, spans in client.find_traces(args.service, now - timedelta(minutes=args.minutes), now).items():
        root = min(spans, key=lambda s: s.start_ns)
        print(f"{trace_id}  {len(spans):3d} spans  {root.service}: {root.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
