"""Admission control: an overloaded edge says so at once, and cheaply, instead of queueing requests to their timeouts.

    admit = Admission(max_queue_seconds=0.5, tls=False)
    admit.waited(wait)                                    # every request's wait for a thread, observed
    answer = admit.refusal(method, path, request_id, wait, keep_alive)   # a whole 503 response, or None

The signal is how long a request waited for a worker thread (edge/worker.py measures it from the moment
its request head was complete). A request that waited longer than EDGE_MAX_QUEUE_MS is answered 503
problem+json with `Retry-After` by the worker itself, before the WSGI environ is built or Flask runs:
no token verification, routing, transcoding, span or gRPC call. The answer is a few header lines and a
small JSON body written to the socket, so a refusal costs under a tenth of a served request
(docs/benchmarks.md, "What a refusal costs"), and the thread goes back to the queue. The connection is
kept alive when the client allows it.

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

Counted, not traced or logged one by one: a refusal is in http_server_requests_total{route="(refused)",
status="503"} and http_server_requests_shed_total, its wait in http_server_queue_wait_seconds (which
every request observes), and a warning at most every ten seconds per worker says how many were refused
since the last one, the longest wait and the latest request id. It has no span and no access line of
its own: an edge that is refusing thousands of requests a second must not spend its CPU on writing
about each (the access line was a fifth of a refusal's cost: docs/benchmarks.md, "What a refusal costs").

A request without a body whose head is all the event loop read is refused from that head
(edge/intake.simple_head), without gunicorn's parser, which was another third of a refusal's cost; any
other (a body, pipelined requests, unusual syntax) is parsed by gunicorn first, so its body is drained
and the connection stays in step.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid

from edge.problems import HSTS, SECURITY_HEADERS, overloaded_body
from observability import metrics

_LOGGER = logging.getLogger(__name__)
_REPORT_EVERY_S = 10.0
PROBES = ("/healthz", "/readyz")  # never refused, never traced, and they take no deadline of the client's
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # a client's X-Request-Id the edge takes as it is
REFUSED_ROUTE = "(refused)"  # the route label of a refusal: it is answered before any routing
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
# What every refusal says besides its body and request id: the status, and the headers of every answer.
_HEAD = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\n"
         "Cache-Control: no-store\r\n" + "".join(f"{name}: {value}\r\n" for name, value in SECURITY_HEADERS.items()))


def request_id(given: str | None) -> str:
    """The client's X-Request-Id when it is well-formed, else a new one."""
    return given if given and REQUEST_ID.match(given) else uuid.uuid4().hex


class _ShedReport:
    """Counts refusals and logs them at most every few seconds: overload must not flood the log."""

    def __init__(self):
        self._lock = threading.Lock()
        self._count = 0
        self._longest = 0.0
        self._reported_at = float("-inf")

    def refused(self, wait: float, budget: float, request_id: str) -> None:
        with self._lock:
            self._count += 1
            self._longest = max(self._longest, wait)
            now = time.monotonic()
            if now - self._reported_at < _REPORT_EVERY_S:
                return
            count, longest, self._count, self._longest, self._reported_at = self._count, self._longest, 0, 0.0, now
        _LOGGER.warning("overloaded: refused %d request(s) that waited over %.0f ms for a thread (longest %.0f ms, "
                        "latest request id %s)", count, budget * 1000, longest * 1000, request_id)


class Admission:
    """Refuses requests that waited longer than `max_queue_seconds` (0: never) for a thread.
    `tls`: the edge serves HTTPS itself, so its answers carry Strict-Transport-Security."""

    def __init__(self, max_queue_seconds: float, tls: bool = False):
        self._budget = max_queue_seconds
        self._hsts = f"Strict-Transport-Security: {HSTS}\r\n" if tls else ""
        self._report = _ShedReport()

    def waited(self, wait: float) -> None:
        """Notes how long a request waited for a thread (every request, refused or not)."""
        metrics.queue_waited(wait)

    def over_budget(self, wait: float) -> bool:
        return 0 < self._budget < wait

    def refusal(self, method: str, path: str, given_request_id: str | None, wait: float,
                keep_alive: bool) -> bytes | None:
        """The whole 503 response for a request that waited `wait` seconds for a thread, or None to serve it."""
        if not 0 < self._budget < wait or path in PROBES:
            return None
        rid = request_id(given_request_id)
        body = overloaded_body(path, rid)
        answer = (f"{_HEAD}{self._hsts}X-Request-Id: {rid}\r\nContent-Length: {len(body)}\r\n"
                  f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n").encode("latin-1")
        if method != "HEAD":  # the answer to HEAD is the head alone (RFC 9110 section 9.3.2)
            answer += body
        metrics.request_shed(REFUSED_ROUTE, method if method in _HTTP_METHODS else "other")
        self._report.refused(wait, self._budget, rid)
        return answer
