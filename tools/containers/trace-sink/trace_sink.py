"""A small OTLP trace receiver with a Jaeger-style query API: the local stand-in for Jaeger.

    OTLP/gRPC in on :4317 (what every process exports to), JSON out on :16686:
    GET /api/services            {"data": ["edge", "orders", ...]}
    GET /api/traces/<trace id>   {"data": [{"traceID", "spans": [...], "processes": {...}}]}

The two GETs answer in the shape Jaeger's query service uses, so the smoke checks of
tools/containers/ read real Jaeger and this alike. Spans are kept in memory (the newest
50,000); there is no UI. Used only by tools/containers/compose.local.yml.
"""

from __future__ import annotations

import collections
import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

_KEEP = 50_000


class TraceStore(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self):
        self._spans: collections.deque = collections.deque(maxlen=_KEEP)
        self._lock = threading.Lock()

    def Export(self, request, context):
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    received.append({
                        "traceID": span.trace_id.hex(), "spanID": span.span_id.hex(), "operationName": span.name,
                        "references": [{"refType": "CHILD_OF", "traceID": span.trace_id.hex(),
                                        "spanID": span.parent_span_id.hex()}] if span.parent_span_id else [],
                        "startTime": span.start_time_unix_nano // 1000,
                        "duration": (span.end_time_unix_nano - span.start_time_unix_nano) // 1000,
                        "processID": resource.get("service.name", "unknown"),
                        "error": span.status.code == 2,
                    })
        with self._lock:
            self._spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def services(self) -> list[str]:
        with self._lock:
            return sorted({s["processID"] for s in self._spans})

    def trace(self, trace_id: str) -> list[dict]:
        with self._lock:
            return [s for s in self._spans if s["traceID"] == trace_id]


def query_handler(store: TraceStore):
    class Query(BaseHTTPRequestHandler):
        def do_GET(self):
            parts = self.path.strip("/").split("/")
            if parts == ["api", "services"]:
                self._reply(200, {"data": store.services()})
            elif len(parts) == 3 and parts[:2] == ["api", "traces"]:
                spans = store.trace(parts[2].lower())
                processes = {s["processID"]: {"serviceName": s["processID"]} for s in spans}
                if spans:
                    self._reply(200, {"data": [{"traceID": parts[2].lower(), "spans": spans, "processes": processes}]})
                else:
                    self._reply(404, {"data": None, "errors": [{"code": 404, "msg": "trace not found"}]})
            else:
                self._reply(404, {"errors": [{"code": 404, "msg": "no such path"}]})

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # queries are polled; their lines would drown the log
            pass

    return Query


def main() -> None:
    store = TraceStore()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(store, server)
    server.add_insecure_port("0.0.0.0:4317")
    server.start()
    print("trace sink: OTLP/gRPC on :4317, query API on :16686", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 16686), query_handler(store)).serve_forever()


if __name__ == "__main__":
    main()
