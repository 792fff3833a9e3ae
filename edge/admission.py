"""Admission control: an overloaded edge says so at once, instead of queueing requests to their timeouts.

    admit = Admission(max_queue_seconds=0.5)
    refused = admit.refusal(request.environ)     # a 503 response, or None: edge/app.py asks first thing

The signal is how long a request waited for a worker thread (edge/worker.py puts it in the WSGI environ
under QUEUE_WAIT). A request that waited longer than EDGE_MAX_QUEUE_MS is answered 503 problem+json
with `Retry-After` (edge/problems.overloaded) by a hook that runs before any token verification,
transcoding or gRPC call, so refusing costs a fraction of serving, and the threads go back to the queue.

Why the wait, and not a count of waiting requests: a wait is what the client feels and what runs out
its timeout, and it adapts to what requests cost (forty cheap reads clear in the time of four orders),
so one budget fits every route and machine. Under load beyond capacity the queue settles where the
request at its head has waited about the budget: the requests served are answered within the budget
plus their own time, the rest are refused after about the budget, and no request waits to its timeout.
A short burst whose requests each wait less than the budget is served in full. The number of sockets
is bounded apart from this, by gunicorn's worker_connections. (Services bound their queues by count,
GRPC_MAX_QUEUED_CALLS, because that is what a gRPC server offers.)

503, not 429: the edge as a whole is overloaded, not one client over its quota. Retry-After is one
second. Requests served outside this worker (the werkzeug test server) carry no wait and are admitted.

Health probes are never refused (edge/app.py does not ask for them): a liveness probe failing under load would restart a busy
but healthy process, and readiness failing would send its load to the other replicas, overloading them
in turn. Refusing the rest keeps the queue short, so the probes are answered in time.

Metrics: http_server_queue_wait_seconds (every request) and http_server_requests_shed_total. A log
line at most every ten seconds per worker says how many requests were refused.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Response

from edge.problems import overloaded
from edge.worker import QUEUE_WAIT
from observability import metrics

_LOGGER = logging.getLogger(__name__)
_REPORT_EVERY_S = 10.0


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
    """Refuses requests that waited longer than `max_queue_seconds` (0: never) for a thread."""

    def __init__(self, max_queue_seconds: float):
        self._budget = max_queue_seconds
        self._report = _ShedReport()

    def refusal(self, environ) -> Response | None:
        """The 503 answer for a request that waited too long, or None to serve it."""
        wait = environ.get(QUEUE_WAIT)
        if wait is None:
            return None
        metrics.queue_waited(wait)
        if 0 < self._budget < wait:
            metrics.request_shed()
            self._report.refused(wait, self._budget)
            return overloaded()
        return None
