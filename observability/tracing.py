"""Tracing setup (resource, sampler, OTLP export), W3C propagation helpers for the HTTP and gRPC
telemetry of observability/http.py and observability/rpc.py, and `untraced()`."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import random
import typing
from collections.abc import Iterable, Iterator

from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from observability import spans

_LOGGER = logging.getLogger(__name__)
_configured = False
_TRACER: trace.Tracer | None = None
_SCOPE = "shop-observability"  # the instrumentation scope of every span the project makes
_PROXY = trace.get_tracer(_SCOPE)  # the API's tracer until an SDK provider is installed (a no-op one before)


def _exporter(protocol: str | None):
    if protocol is None:
        return None
    # Either takes its endpoint, headers and TLS from the standard OTEL_EXPORTER_OTLP_* variables.
    if protocol.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
        return HttpSpanExporter()
    from observability.otlp import SpanExporter  # the SDK's gRPC exporter, encoding without protobuf objects
    return SpanExporter()


def _sampler(name: str, ratio: float) -> Sampler:
    root = {"always_on": ALWAYS_ON, "always_off": ALWAYS_OFF}.get(name.removeprefix("parentbased_")) \
        or TraceIdRatioBased(ratio)
    return ParentBased(root) if name.startswith("parentbased_") else root


def setup_tracing(settings) -> None:
    """Installs the tracer provider (HTTP, gRPC and store spans come from observability/http.py,
    observability/rpc.py and observability/store.py). Idempotent.

    `settings` is a runtime.settings.TelemetrySettings."""
    global _configured, _TRACER
    if _configured:
        return
    resource = Resource.create({
        "service.name": settings.service_name,
        "service.version": settings.service_version,
        "deployment.environment": settings.environment,
    })
    provider = TracerProvider(resource=resource, sampler=_sampler(settings.sampler, settings.sampler_ratio))
    exporter = _exporter(settings.exporter_protocol)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _TRACER = None
    _configured = True
    _LOGGER.info("tracing %s (export: %s)", settings.service_name, settings.exporter_protocol or "off")


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """Runs housekeeping (readiness probes, store pings, background passes) under a parent that is not
    sampled, so no instrumentation inside starts a trace of its own and nothing is exported."""
    parent = NonRecordingSpan(SpanContext(trace_id=random.getrandbits(128) | 1, span_id=random.getrandbits(64) | 1,
                                          is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT)))
    token = context.attach(trace.set_span_in_context(parent))
    try:
        yield
    finally:
        context.detach(token)


def tracer() -> trace.Tracer:
    """The project's tracer: observability/spans.py's, on the installed SDK provider (its sampler, ids,
    resource and span processors); before a provider is installed, the API's proxy tracer."""
    global _TRACER
    if _TRACER is None:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            return _PROXY  # not kept as _TRACER: a provider may be installed later
        _TRACER = spans.Tracer(typing.cast(sdk_trace.Tracer, provider.get_tracer(_SCOPE)), _SCOPE)
    return _TRACER


class _HeaderGetter(Getter):
    """Reads a carrier whose keys may be any case: HTTP headers, or gRPC metadata (lower case)."""

    def get(self, carrier, key):
        value = carrier.get(key)
        return [value] if value is not None else None

    def keys(self, carrier):
        return list(carrier.keys())


_GETTER = _HeaderGetter()


def extract_http(headers) -> context.Context:
    """The caller's trace context from W3C traceparent/tracestate headers (werkzeug Headers, any case)."""
    return propagate.extract(headers, getter=_GETTER)


def extract_grpc(metadata: Iterable[tuple[str, str]]) -> context.Context:
    """The caller's trace context from gRPC invocation metadata."""
    return propagate.extract({key: value for key, value in metadata if not key.endswith("-bin")}, getter=_GETTER)


def inject(metadata: list[tuple[str, str]]) -> None:
    """Adds the current trace context (traceparent, tracestate) to outgoing gRPC metadata."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    metadata.extend(carrier.items())


def shutdown() -> None:
    """Flushes spans still in the batch (on graceful shutdown)."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


def mark_user(subject: str) -> None:
    """Records who acted on the current span as a hash of the token's subject (never the token)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("enduser.id", _pseudonym(subject))


@functools.lru_cache(maxsize=4096)  # the same users call again and again
def _pseudonym(subject: str) -> str:
    return hashlib.sha256(subject.encode()).hexdigest()[:16]
