"""Telemetry of gRPC calls: a SERVER span and RED metrics per call served, a CLIENT span per call made.

    grpc.server(..., interceptors=[ServerTelemetry(), ...])     # first, so it sees every refusal too
    with client_span(full_method) as metadata_out: ...          # around an outgoing call (runtime/clients.py)

Spans follow OpenTelemetry's RPC conventions (rpc.system, rpc.service, rpc.method, and
rpc.grpc.status_code), continue the caller's W3C context from the metadata, and are marked as
errors only for codes that mean the server failed. Health checking and reflection get neither
spans nor metrics. Written here rather than taken from opentelemetry-instrumentation-grpc: one
interceptor does spans and metrics together, with the per-method work done once.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator

import grpc
from opentelemetry import context, trace

from observability import metrics
from observability.tracing import extract_grpc, inject, tracer

_UNOBSERVED = ("/grpc.health.v1.", "/grpc.reflection.")
# Codes that mean the server failed; any other code is the caller's fault and not a span error. The 5xx
# codes of runtime/failures.py (which sits above this package; tests/unit/test_failures.py pins the two).
SERVER_FAULTS = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED,
                           grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS})


@functools.lru_cache(maxsize=1024)  # made once per method: a process serves and calls a few, again and again
def _attributes(full_method: str) -> tuple[str, str, dict]:
    """(service, method name, the span's attributes) of "/package.Service/Method"; the dict is shared:
    spans copy it."""
    service, _, name = full_method.strip("/").partition("/")
    return service, name, {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def record_status(span, code: grpc.StatusCode) -> None:
    """The call's status on its span: the code always, an error status only for server faults."""
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in SERVER_FAULTS:
        span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))


class ServerTelemetry(grpc.ServerInterceptor):
    """A SERVER span and RED metrics around every unary call (health and reflection left out)."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not handler.unary_unary or method.startswith(_UNOBSERVED):
            return handler
        service, name, attributes = _attributes(method)
        behaviour = handler.unary_unary

        def observed(request, context_):
            span = tracer().start_span(f"{service}/{name}", context=extract_grpc(context_.invocation_metadata()),
                                       kind=trace.SpanKind.SERVER, attributes=attributes)
            token = context.attach(trace.set_span_in_context(span))
            in_flight, began, code = metrics.grpc_started(service, name), time.perf_counter(), grpc.StatusCode.OK
            try:
                return behaviour(request, context_)
            except Exception as error:
                code = context_.code() or grpc.StatusCode.UNKNOWN
                if code == grpc.StatusCode.UNKNOWN:
                    span.record_exception(error)
                raise
            finally:
                code = context_.code() or code  # set by abort() or set_code(), whether or not it raised
                record_status(span, code)
                metrics.grpc_finished(in_flight, service, name, code.name, time.perf_counter() - began)
                span.end()
                context.detach(token)

        return grpc.unary_unary_rpc_method_handler(observed, handler.request_deserializer, handler.response_serializer)


@contextlib.contextmanager
def client_span(full_method: str, metadata: list[tuple[str, str]]) -> Iterator[trace.Span]:
    """A CLIENT span for one outgoing call, current while it runs; adds its trace context to `metadata`
    (send that list). One context manager, not three (tracer.start_as_current_span and use_span)."""
    service, name, attributes = _attributes(full_method)
    span = tracer().start_span(f"{service}/{name}", kind=trace.SpanKind.CLIENT, attributes=attributes)
    token = context.attach(trace.set_span_in_context(span))
    try:
        inject(metadata)
        yield span
    except grpc.RpcError as error:
        record_status(span, error.code())
        raise
    else:
        span.set_attribute("rpc.grpc.status_code", 0)
    finally:
        context.detach(token)
        span.end()

