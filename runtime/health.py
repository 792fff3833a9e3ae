"""grpc.health.v1 for every service: Check, and Watch streams that hold no worker thread.

Why not the stock grpcio-health-checking servicer: it sends to watchers while holding its lock, and
the server thread takes that same lock when a watcher goes away. With clients that watch (every
channel of this project balances on a health name, runtime/channels.py), a status change racing a
disconnect deadlocks the server. Here the lock only guards the tables; sending happens outside it,
one status change at a time, so watchers see changes in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_NAME = "grpc.health.v1.Health"

Send = Callable[[health_pb2.HealthCheckResponse | None], None]


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self):
        self._lock = threading.Lock()  # guards the two tables below, never held while sending
        self._send_order = threading.Lock()  # one status change is delivered at a time
        self._status: dict[str, int] = {}
        self._watchers: dict[str, set[Send]] = {}
        self._shutting_down = False

    def Check(self, request, context):
        with self._lock:
            status = self._status.get(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request, context, send_response_callback: Send | None = None):
        """Sends the current status, then every change, until the caller goes away (non-blocking:
        the server calls this with a callback and no worker thread waits on the stream)."""
        assert send_response_callback is not None, "Watch is non-blocking: grpc passes the callback"
        service = request.service

        def forget():
            with self._lock:
                self._watchers.get(service, set()).discard(send_response_callback)

        with self._send_order:
            with self._lock:
                status = self._status.get(service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
                self._watchers.setdefault(service, set()).add(send_response_callback)
            context.add_callback(forget)
            send_response_callback(health_pb2.HealthCheckResponse(status=status))

    Watch.experimental_non_blocking = True  # type: ignore[attr-defined]

    def set(self, service: str, status: int) -> None:
        self._change({service: status})

    def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING, for good: later set() calls change nothing."""
        self._change(None)

    def _change(self, statuses: dict[str, int] | None) -> None:
        """Records new statuses (None: every service NOT_SERVING and shutting down) and tells the
        watchers of each service whose status changed, outside the table lock."""
        with self._send_order:
            with self._lock:
                if self._shutting_down:
                    return
                if statuses is None:
                    self._shutting_down = True
                    statuses = dict.fromkeys(self._status, NOT_SERVING)
                changed = {name: status for name, status in statuses.items() if self._status.get(name) != status}
                self._status.update(changed)
                deliveries = [(send, status) for name, status in changed.items() for send in self._watchers.get(name, ())]
            for send, status in deliveries:
                send(health_pb2.HealthCheckResponse(status=status))
