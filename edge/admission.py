"""Admission control: an overloaded edge says so at once, and cheaply, instead of queueing requests to their timeouts.

    admit = Admission(max_queue_seconds=0.5, tls=False)
    answer = admit.refusal(method, path, headers, wait)   # bytes of a whole 503 response, or None to serve it

The signal is how long a request waited for a worker thread (edge/worker.py measures it from the moment
its request head was complete). A request that waited longer than EDGE_MAX_QUEUE_MS is answered 503
problem+json with `Retry-After` by the worker itself, right after gunicorn parsed the request head and
before the WSGI environ is built or Flask runs: no token verification, routing, transcoding, span or
gRPC call. The answer is a few header lines and a small JSON body written to the socket, so refusing
costs a small fraction of serving (docs/benchmarks.md, "Overload": served requests at four times the
edge's capacity stay near the capacity), and the thread goes back to the queue. The connection is kept
alive when the client allows it (gunicorn drains a body the request carried, within its bounds).

Why the wait, and not a count of waiting requests: a wait is what the client feels and what runs out
its timeout, and it adapts to what requests cost (forty cheap reads clear in the time of four orders),
so one budget fits every route and machine. Under load beyond capacity the queue settles where the
request at its head has waited about the budget: the requests served are answered within the budget
plus their own time, the rest are refused after about the budget, and no request waits to its timeout.
A short burst whose requests each wait less than the budget is served in full. The number of sockets
is bounded apart from this, by gunicorn's worker_connections. (Services bound their queues by count,
GRPC_MAX_QUEUED_CALLS, because that is what a gRPC server offers.)

503, not 429: the edge as a whole is overloaded, not one client over its quota. Retry-After is one
second. The body is the edge's problem+json (edge/problems.py builds it) with reason OVERLOADED, the
request path as `instance` and the request id (the client's X-Request-Id if well-formed, else a new
one), which the answer also carries as X-Request-Id, like every answer of the edge.

Health probes are never refused: a liveness probe failing under load would restart a busy but healthy
process, and readiness failing would send its load to the other replicas, overloading them in turn.
Refusing the rest keeps the queue short, so the probes are answered in time.

Seen, though not traced: a refusal has no span (the sampling decision: metrics and logs cover every
request, traces a share of them). It is counted in http_server_requests_total{route="(refused)",
status="503"} and http_server_requests_shed_total, its wait in http_server_queue_wait_seconds (which
every request observes), and it has its JSON access line with its request id; a warning at most every
ten seconds per worker says how many were refused.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid

from edge.problems import SECURITY_HEADERS, overloaded_body
from observability import metrics

_LOGGER = logging.getLogger(__name__)
_ACCESS = logging.getLogger("edge.access")
_REPORT_EVERY_S = 10.0
PROBES = ("/healthz", "/readyz")  # never refused, never traced, and they take no deadline of the client's
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # a client's X-Request-Id the edge takes as it is
REFUSED_ROUTE = "(refused)"  # the route label of a refusal: it is answered before any routing
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
# What every refusal says besides its body and request id: the status, and the headers of every answer.
_HEAD = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\n"
         "Cache-Control: no-store\r\n" + "".join(f"{name}: {value}\r\n" for name, value in SECURITY_HEADERS.items()))
_HSTS = "Strict-Transport-Security: max-age=31536000\r\n"


def request_id(given: str | None) -> str:
    """The client's X-Request-Id when it is well-formed, else a new one."""
    return given if given and REQUEST_ID.match(given) else uuid.uuid4().hex


class _ShedReport:
    """Counts refusals and logs them at most every few seconds: overload must not flood the log."""

    def __init__(self):
        self._lock = threading.Lock()
        self._count = 0
        self._reported_at = float("-inf")

    def refused(self, wait: float, budget: float) -> None:
        with self._lock:
            self._count += 1
            now = time.monotonic()
            if now - self._reported_at < _REPORT_EVERY_S:
                return
            count, self._count, self._reported_at = self._count, 0, now
        _LOGGER.warning("overloaded: refused %d request(s) that waited over %.0f ms for a thread (latest %.0f ms)",
                        count, budget * 1000, wait * 1000)


class Admission:
    """Refuses requests that waited longer than `max_queue_seconds` (0: never) for a thread.
    `tls`: the edge serves HTTPS itself, so its answers carry Strict-Transport-Security."""

    def __init__(self, max_queue_seconds: float, tls: bool = False):
        self._budget = max_queue_seconds
        self._hsts = _HSTS if tls else ""
        self._report = _ShedReport()

    def refusal(self, method: str, path: str, given_request_id: str | None, wait: float,
                keep_alive: bool) -> bytes | None:
        """The whole 503 response for a request that waited `wait` seconds for a thread, or None to serve it."""
        metrics.queue_waited(wait)
        if not 0 < self._budget < wait or path in PROBES:
            return None
        started = time.perf_counter()
        rid = request_id(given_request_id)
        body = overloaded_body(path, rid)
        answer = (f"{_HEAD}{self._hsts}X-Request-Id: {rid}\r\nContent-Length: {len(body)}\r\n"
                  f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n").encode("latin-1") + body
        method = method if method in _HTTP_METHODS else "other"
        metrics.request_shed()
        metrics.http_finished(metrics.http_started(REFUSED_ROUTE, method), REFUSED_ROUTE, method, 503,
                              time.perf_counter() - started)
        _ACCESS.info("%s %s 503", method, REFUSED_ROUTE, extra={"request_id": rid, "http": {
            "method": method, "route": REFUSED_ROUTE, "status": 503, "queue_wait_ms": round(wait * 1000, 1),
            "duration_ms": 0.0}})
        self._report.refused(wait, self._budget)
        return answer
