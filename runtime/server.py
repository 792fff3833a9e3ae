"""The gRPC server every service runs: mTLS, authorization, health, reflection, shutdown.

A service supplies its servicers, its service descriptors and a readiness probe of its
store; this module does the rest the same way for all of them:

    server = ServiceServer(settings, descriptors=[DESCRIPTOR.services_by_name["ShelfService"]],
                           register=lambda s: add_ShelfServiceServicer_to_server(servicer, s),
                           ready_check=store.ping, on_stop=store.close)
    port = server.port           # bound at construction, so GRPC_PORT=0 works in tests
    server.start()
    server.run_until_signal()    # SIGTERM/SIGINT: NOT_SERVING, finish in-flight calls, close
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor as _descriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from observability.metrics import serve_metrics
from observability.rpc import ServerTelemetry
from observability.tracing import untraced
from runtime.calls import MAX_CALL_SECONDS
from runtime.channels import ROUTING_HEALTH_NAME
from runtime.credentials import server_credentials
from runtime.health import SERVICE_NAME as HEALTH_SERVICE_NAME
from runtime.health import HealthServicer
from runtime.interceptors import AuthorizationInterceptor, Check, field_rules_check
from runtime.page_tokens import PageTokenInterceptor, PageTokenSeal
from runtime.policy import policies_for
from runtime.reflection import enable_reflection, reflection_policies
from runtime.settings import ServerSettings

_LOGGER = logging.getLogger(__name__)
_READINESS_INTERVAL_S = 2.0
# ROUTING_HEALTH_NAME, the health name callers balance on, is SERVING from start until the server begins
# to stop, whatever its store says (a store outage is answered, quickly, with UNAVAILABLE; it is not
# hidden). On SIGTERM it turns NOT_SERVING first, callers' health watches see it and send their next
# calls elsewhere (or wait for the restarted process), and only then does the server refuse calls: no
# call is cut off by the shutdown itself.
_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# How long calls still running on a connection that reached its maximum age may go on. Longer than
# any call may last (MAX_CALL_SECONDS), with room for a client that starts one more call before it
# has read the server's GOAWAY (seconds later on a busy machine): a call cut here has run, perhaps
# to the end (an order confirmed), and its caller only hears UNAVAILABLE.
_CONNECTION_AGE_GRACE_SECONDS = 3 * MAX_CALL_SECONDS


@dataclass(frozen=True)
class Wiring:
    """A service as its composition root builds it (build_<name> in services/<name>/server.py), before it
    is put on a gRPC server: the servicers to register and their descriptors, how readiness is checked,
    what runs at start and at stop, and the checks every call passes after its caller's identity."""

    descriptors: Sequence[_descriptor.ServiceDescriptor]
    register: Callable[[grpc.Server], None]
    ready_check: Callable[[], None]
    on_stop: Callable[[], None] = lambda: None
    on_start: Callable[[], None] = lambda: None
    checks: tuple[Check, ...] = ()


def serve(settings: ServerSettings, wiring: Wiring) -> tuple[ServiceServer, int]:
    """The gRPC server of a wiring, its port bound, not started (GRPC_PORT=0 picks a free port)."""
    server = ServiceServer(settings, descriptors=wiring.descriptors, register=wiring.register,
                           ready_check=wiring.ready_check, on_stop=wiring.on_stop, on_start=wiring.on_start,
                           checks=wiring.checks)
    return server, server.port


def in_order(*steps: Callable[[], None]) -> Callable[[], None]:
    """One callable running `steps` one after another (closing what a service opened)."""

    def run() -> None:
        for step in steps:
            step()

    return run


class ServiceServer:
    """A started-on-demand gRPC server with health tracking its store and graceful shutdown."""

    def __init__(
        self,
        settings: ServerSettings,
        *,
        descriptors: Sequence[_descriptor.ServiceDescriptor],
        register: Callable[[grpc.Server], None],
        ready_check: Callable[[], None],
        on_stop: Callable[[], None] = lambda: None,
        on_start: Callable[[], None] = lambda: None,
        checks: tuple[Check, ...] = (),
    ):
        self._settings = settings
        self._service_names = [d.full_name for d in descriptors]
        self._ready_check = ready_check
        self._on_stop = on_stop
        self._on_start = on_start
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self.health = HealthServicer()
        for name in ("", *self._service_names):
            self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.health.set(ROUTING_HEALTH_NAME, health_pb2.HealthCheckResponse.SERVING)

        # Who may call first, then the user's token, then the request itself.
        interceptor = AuthorizationInterceptor({**policies_for(descriptors), **reflection_policies()}, settings.trust_domain,
                                               (*checks, field_rules_check))
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix=settings.service),
            interceptors=[ServerTelemetry(), interceptor, PageTokenInterceptor(PageTokenSeal(settings.tls.key.read_bytes()))],
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
                # Connections end after this age (in-flight calls get the grace), so clients resolve the
                # service's name again and spread over replicas added since.
                ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
                ("grpc.max_connection_age_grace_ms", int(_CONNECTION_AGE_GRACE_SECONDS * 1000)),
            ],
            # Past this many calls at once a new call is refused at once (RESOURCE_EXHAUSTED) instead of
            # queueing until its deadline: an overloaded service answers quickly, and callers back off.
            maximum_concurrent_rpcs=settings.max_workers + settings.max_queued_calls,
        )
        register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection([*self._service_names, HEALTH_SERVICE_NAME], self.server)
        address = f"{settings.host}:{settings.port}"
        self.port = self.server.add_secure_port(address, server_credentials(settings.tls))
        if self.port == 0:
            raise RuntimeError(f"could not bind {address}")
        self.health_port, self._health_server = self._plaintext_health(settings)

    def _plaintext_health(self, settings: ServerSettings) -> tuple[int | None, grpc.Server | None]:
        """With HEALTH_PORT set, grpc.health alone is also served without TLS, for probes that cannot
        present a certificate (Kubernetes' native gRPC probe). Nothing else is reachable there."""
        port = settings.health_port
        if port is None:
            return None, None
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        bound = server.add_insecure_port(f"{settings.host}:{port}")
        if bound == 0:
            raise RuntimeError(f"could not bind health port {settings.host}:{port}")
        return bound, server

    def start(self) -> None:
        self.server.start()
        if self._health_server is not None:
            self._health_server.start()
        threading.Thread(target=self._watch_readiness, name="readiness", daemon=True).start()
        self._on_start()
        _LOGGER.info("%s listening on %s:%d (mTLS)", self._settings.service, self._settings.host, self.port)

    def _watch_readiness(self) -> None:
        """SERVING while the store answers; NOT_SERVING before it first does and whenever it stops."""
        serving = None
        while not self._stopping.is_set():
            try:
                with untraced():  # a probe every few seconds is not a request: no trace of its own
                    self._ready_check()
                ok = True
            except Exception as error:  # any store failure means "not ready", never a crash
                ok = False
                if serving is not False:
                    _LOGGER.warning("store not ready: %s", error)
            if ok != serving and not self._stopping.is_set():
                status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
                for name in ("", *self._service_names):
                    self.health.set(name, status)
                serving = ok
            self._stopping.wait(_READINESS_INTERVAL_S if ok else 0.2)

    def stop(self, grace: float | None = None) -> threading.Event:
        """Reports NOT_SERVING and waits for callers to route around it (at most the drain time, within
        `grace`), then refuses new calls and lets those in flight finish within what is left of `grace`."""
        if self._stopping.is_set():
            return self._stopped
        self._stopping.set()
        grace = self._settings.grace_seconds if grace is None else grace
        _LOGGER.info("%s shutting down (grace %.1fs)", self._settings.service, grace)
        drain = min(self._settings.drain_seconds, grace)
        if drain > 0:
            self.health.set(ROUTING_HEALTH_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
            time.sleep(drain)
        self.health.enter_graceful_shutdown()
        done = self.server.stop(grace - drain)
        if self._health_server is not None:
            self._health_server.stop(grace)

        def finish():
            done.wait()
            try:
                self._on_stop()
            finally:
                self._stopped.set()

        threading.Thread(target=finish, name="shutdown", daemon=True).start()
        return self._stopped

    def run_until_signal(self) -> None:
        """Blocks until SIGTERM or SIGINT, then shuts down gracefully. Call from the main thread."""
        received = threading.Event()

        def on_signal(signum, _frame):
            _LOGGER.info("received %s", signal.Signals(signum).name)
            received.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not received.wait(1.0):
            pass
        self.stop().wait()


def run_service(load_settings: Callable[[], Any], create_server: Callable[[Any], tuple[ServiceServer, int]]) -> int:
    """The body of every service's __main__: settings from the environment, read and checked once (a bad
    one ends the process with exit code 2 and the variable's name), telemetry, serve until SIGTERM.

    `load_settings()` returns the service's settings object; its `server` attribute is the ServerSettings.
    """
    import sys

    from observability import setup_telemetry
    from observability.tracing import shutdown as flush_traces
    from runtime.settings import ConfigError

    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    common: ServerSettings = settings.server
    setup_telemetry(common.telemetry)  # before the server and channels exist, so they are instrumented
    with untraced():  # connecting, schema, first keys: start-up work, not a request
        server, _port = create_server(settings)
    if common.metrics_port:
        serve_metrics(common.metrics_port, common.metrics_host)
    server.start()
    server.run_until_signal()
    flush_traces()
    return 0
