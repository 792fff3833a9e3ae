"""RED metrics (rate, errors, duration) for Prometheus, per HTTP route and per gRPC method.

    http_server_requests_total{route, method, status}
    http_server_request_duration_seconds{route, method}      (histogram)
    http_server_requests_in_flight{route, method}
    grpc_server_handled_total{grpc_service, grpc_method, grpc_code}
    grpc_server_handling_seconds{grpc_service, grpc_method}   (histogram)
    grpc_server_in_flight{grpc_service, grpc_method}

Routes are URL rule templates ("/v1/shelves/<seg:id>"), never raw paths, and a method outside
the standard ones counts as "other", so a client cannot grow the number of series. Under gunicorn, PROMETHEUS_MULTIPROC_DIR makes every worker count
into one set of files that /metrics adds up.
"""

from __future__ import annotations

import time

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, start_http_server

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_OPEN_GRPC = ("/grpc.health.v1.", "/grpc.reflection.")
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter("http_server_requests", "HTTP requests handled", ["route", "method", "status"])
HTTP_DURATION = Histogram("http_server_request_duration_seconds", "HTTP request duration", ["route", "method"],
                          buckets=_BUCKETS)
HTTP_IN_FLIGHT = Gauge("http_server_requests_in_flight", "HTTP requests being handled", ["route", "method"],
                       multiprocess_mode="livesum")
GRPC_HANDLED = Counter("grpc_server_handled", "gRPC calls completed", ["grpc_service", "grpc_method", "grpc_code"])
GRPC_DURATION = Histogram("grpc_server_handling_seconds", "gRPC call duration", ["grpc_service", "grpc_method"],
                          buckets=_BUCKETS)
GRPC_IN_FLIGHT = Gauge("grpc_server_in_flight", "gRPC calls being handled", ["grpc_service", "grpc_method"],
                       multiprocess_mode="livesum")


# --- HTTP (Flask) ---------------------------------------------------------------------------------

def instrument_flask(app) -> None:
    """Counts every request of the app by route template, method and status."""
    from flask import g, request

    def route() -> str:
        return request.url_rule.rule if request.url_rule is not None else "<unmatched>"

    @app.before_request
    def _start():
        method = request.method if request.method in _HTTP_METHODS else "other"
        g._metrics = (route(), method, time.perf_counter())
        HTTP_IN_FLIGHT.labels(g._metrics[0], g._metrics[1]).inc()

    @app.after_request
    def _finish(response):
        started = g.pop("_metrics", None)
        if started is not None:
            path, method, began = started
            HTTP_IN_FLIGHT.labels(path, method).dec()
            HTTP_DURATION.labels(path, method).observe(time.perf_counter() - began)
            HTTP_REQUESTS.labels(path, method, str(response.status_code)).inc()
        return response


def serve_multiprocess_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serves /metrics adding up every process that counts into PROMETHEUS_MULTIPROC_DIR (gunicorn
    workers), from a thread of the calling process (the gunicorn master)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)


# --- gRPC -----------------------------------------------------------------------------------------

class GrpcMetricsInterceptor(grpc.ServerInterceptor):
    """Counts unary calls by service, method and status code (health and reflection left out)."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not handler.unary_unary or method.startswith(_OPEN_GRPC):
            return handler
        service, _, name = method.strip("/").partition("/")

        def measured(request, context):
            GRPC_IN_FLIGHT.labels(service, name).inc()
            began, code = time.perf_counter(), "OK"
            try:
                return handler.unary_unary(request, context)
            except Exception:
                code = (context.code() or grpc.StatusCode.UNKNOWN).name if hasattr(context, "code") else "UNKNOWN"
                raise
            finally:
                if code == "OK" and hasattr(context, "code") and context.code() not in (None, grpc.StatusCode.OK):
                    code = context.code().name
                GRPC_IN_FLIGHT.labels(service, name).dec()
                GRPC_DURATION.labels(service, name).observe(time.perf_counter() - began)
                GRPC_HANDLED.labels(service, name, code).inc()

        return grpc.unary_unary_rpc_method_handler(measured, handler.request_deserializer, handler.response_serializer)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Exposes /metrics on its own port (services have no HTTP server of their own)."""
    start_http_server(port, addr=host)
