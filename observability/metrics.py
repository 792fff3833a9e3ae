"""RED metrics (rate, errors, duration) for Prometheus, per HTTP route and per gRPC method.

    http_server_requests_total{route, method, status}
    http_server_request_duration_seconds{route, method}      (histogram)
    http_server_requests_in_flight{route, method}
    grpc_server_handled_total{grpc_service, grpc_method, grpc_code}
    grpc_server_handling_seconds{grpc_service, grpc_method}   (histogram)
    grpc_server_in_flight{grpc_service, grpc_method}
    http_server_queue_wait_seconds                            (histogram) time a request waited for a server thread
    http_server_requests_shed_total                           requests refused because they waited too long

Recorded by observability/http.py and observability/rpc.py, which keep label values bounded
(route templates, known methods). Under gunicorn, PROMETHEUS_MULTIPROC_DIR makes every worker count
into one set of files that the master's /metrics adds up.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, start_http_server

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Red:
    """One family of RED metrics: a counter of finished calls (by outcome), a duration histogram and an
    in-flight gauge. Label children are kept by label values, so a call costs dictionary lookups, not
    prometheus_client's labels()."""

    def __init__(self, prefix: str, what: str, labels: list[str], outcome: str, counter: str, duration: str):
        self.finished = Counter(counter, f"{what} completed", [*labels, outcome])
        self.duration = Histogram(duration, f"{what} duration", labels, buckets=_BUCKETS)
        self.in_flight = Gauge(f"{prefix}_in_flight", f"{what} being handled", labels, multiprocess_mode="livesum")
        self._children: dict[tuple, object] = {}

    def _child(self, metric, labels: tuple):
        child = self._children.get((id(metric), labels))
        if child is None:
            child = self._children[(id(metric), labels)] = metric.labels(*labels)
        return child

    def start(self, *labels: str):
        """Counts a call in flight; hand the result to finish()."""
        in_flight = self._child(self.in_flight, labels)
        in_flight.inc()
        return in_flight

    def finish(self, in_flight, labels: tuple, outcome: str, seconds: float) -> None:
        in_flight.dec()
        self._child(self.duration, labels).observe(seconds)
        self._child(self.finished, (*labels, outcome)).inc()


HTTP = _Red("http_server_requests", "HTTP requests", ["route", "method"], "status",
            "http_server_requests", "http_server_request_duration_seconds")
GRPC = _Red("grpc_server", "gRPC calls", ["grpc_service", "grpc_method"], "grpc_code",
            "grpc_server_handled", "grpc_server_handling_seconds")


def http_started(route: str, method: str):
    return HTTP.start(route, method)


def http_finished(in_flight, route: str, method: str, status: int, seconds: float) -> None:
    HTTP.finish(in_flight, (route, method), str(status), seconds)


# Admission control at the edge (edge/admission.py): how long requests wait for a thread, and how many are refused.
_QUEUE_WAIT = Histogram("http_server_queue_wait_seconds", "Time HTTP requests waited for a server thread", buckets=_BUCKETS)
_SHED = Counter("http_server_requests_shed", "HTTP requests refused (503) because they waited too long for a thread")


def queue_waited(seconds: float) -> None:
    _QUEUE_WAIT.observe(seconds)


def request_shed(route: str, method: str) -> None:
    """A request refused before it was served: counted as shed and as a 503 of `route`, without the
    in-flight gauge or a duration (it had none to speak of)."""
    _SHED.inc()
    HTTP._child(HTTP.finished, (route, method, "503")).inc()


def grpc_started(service: str, method: str):
    return GRPC.start(service, method)


def grpc_finished(in_flight, service: str, method: str, code: str, seconds: float) -> None:
    GRPC.finish(in_flight, (service, method), code, seconds)


def serve_multiprocess_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serves /metrics adding up every process that counts into PROMETHEUS_MULTIPROC_DIR (gunicorn
    workers), from a thread of the calling process (the gunicorn master)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Exposes /metrics on its own port (services have no HTTP server of their own)."""
    start_http_server(port, addr=host)
