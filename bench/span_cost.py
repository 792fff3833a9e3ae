"""What one recorded span costs, made and exported to a real Jaeger over OTLP/gRPC. Measured, not asserted.

    .venv/bin/python -m bench.span_cost [--spans 20000] [--rounds 5]

One process, the modes interleaved round by round, each with a tracer provider of its own (the
resource the services set, every span recorded, a BatchSpanProcessor as in production):

    sdk        the SDK's spans, exported by opentelemetry-exporter-otlp-proto-grpc's OTLPSpanExporter
               (protobuf objects): the stock pipeline, what the project ran before
    ours       observability.spans' spans, exported by observability.otlp.SpanExporter (the same
               exporter, the wire bytes written directly): the project's pipeline
    made sdk   the SDK's spans made and ended, no processor: what making one costs before any export
    made ours  observability.spans' spans made and ended, no processor

Each span looks like an edge request's SERVER span: three attributes at start, two more at the end.
CPU is the whole process's (the exporter's thread included) from the first span until force_flush
returned, divided by the spans; the figure printed is the median of the rounds. Then the encoding
alone, per span, of a batch of 512 of those spans: the SDK's encode_spans(...).SerializeToString()
against observability.otlp.encode_spans(...).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode  # noqa: E402
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, Tracer  # noqa: E402

from observability import otlp  # noqa: E402
from observability import spans as project_spans  # noqa: E402
from tools.jaeger import Jaeger, JaegerPorts  # noqa: E402

MODES = ("sdk", "ours", "made sdk", "made ours")
_RESOURCE = {"service.name": "edge", "service.version": "0.1.0", "deployment.environment": "bench"}
_SCOPE = "shop-observability"


def _tracer(mode: str, endpoint: str, spans: int) -> tuple[TracerProvider, Tracer]:
    provider = TracerProvider(resource=Resource.create(_RESOURCE))
    exporter = {"sdk": OTLPSpanExporter, "ours": otlp.SpanExporter}.get(mode)
    if exporter is not None:  # a queue that holds a whole round: every span is exported, none dropped
        provider.add_span_processor(BatchSpanProcessor(exporter(endpoint=endpoint, insecure=True), max_queue_size=spans + 1000))
    tracer = provider.get_tracer(_SCOPE)
    return provider, tracer if mode.endswith("sdk") else project_spans.Tracer(tracer, _SCOPE)


def _make(tracer, count: int) -> None:
    for n in range(count):
        span = tracer.start_span("GET /v1/accounts/<uuid:id>", kind=SpanKind.SERVER, attributes={
            "http.request.method": "GET", "http.route": "/v1/accounts/<uuid:id>", "url.path": f"/v1/accounts/{n}"})
        span.set_attributes({"http.response.status_code": 200, "url.scheme": "http"})
        span.end()


def _round(provider: TracerProvider, tracer: Tracer, count: int) -> float:
    started = time.process_time()
    _make(tracer, count)
    provider.force_flush(60_000)
    return (time.process_time() - started) / count * 1e6


def _encoding(count: int = 512, repeat: int = 20) -> dict[str, float]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(_RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _make(provider.get_tracer(_SCOPE), count)
    batch = memory.get_finished_spans()
    costs = {}
    for name, encode in (("sdk", lambda: sdk_encode(batch).SerializeToString()), ("ours", lambda: otlp.encode_spans(batch))):
        started = time.process_time()
        for _ in range(repeat):
            encode()
        costs[name] = (time.process_time() - started) / (count * repeat) * 1e6
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=pathlib.Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Jaeger(JaegerPorts.free(), log_path=pathlib.Path(tmp) / "jaeger.log") as jaeger:
        endpoint = jaeger.exporter_env()["OTEL_EXPORTER_OTLP_ENDPOINT"]
        tracers = {mode: _tracer(mode, endpoint, args.spans) for mode in MODES}
        for provider, tracer in tracers.values():
            _round(provider, tracer, 500)  # warm: channels connected, code paths loaded
        results: dict[str, list[float]] = {mode: [] for mode in MODES}
        for round_ in range(args.rounds):
            for mode in MODES if round_ % 2 == 0 else reversed(MODES):
                results[mode].append(_round(*tracers[mode], args.spans))
        for provider, _ in tracers.values():
            provider.shutdown()
    encoding = _encoding()
    print(f"{args.spans} spans a round, {args.rounds} rounds, {os.cpu_count()} cores shared with Jaeger; "
          "microseconds of this process's CPU per span, median (min-max)")
    print("| mode | us/span | exported after making |")
    print("| --- | ---: | ---: |")
    for mode in MODES:
        values = results[mode]
        made = "-" if mode.startswith("made") else f"{statistics.median(values) - statistics.median(results['made ' + mode]):.1f}"
        print(f"| {mode} | {statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f}) | {made} |")
    ratio = statistics.median(results["ours"]) / statistics.median(results["sdk"])
    print(f"\na recorded span, made and exported: ours / sdk {ratio:.2f}x")
    print(f"\nencoding alone, a batch of 512: SDK {encoding['sdk']:.1f} us/span, ours {encoding['ours']:.1f} us/span "
          f"({encoding['ours'] / encoding['sdk']:.2f}x)")
    if args.out:
        args.out.write_text(json.dumps({"us_per_span": {mode: statistics.median(v) for mode, v in results.items()},
                                        "encoding_us_per_span": encoding}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
