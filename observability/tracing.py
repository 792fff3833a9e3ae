"""Tracing setup: resource, sampler, OTLP export, instrumentations; and `untraced()` for housekeeping."""

from __future__ import annotations

import contextlib
import logging
import random
from typing import Iterator

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler,
                                              TraceIdRatioBased)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

_LOGGER = logging.getLogger(__name__)
# Probes and reflection are not requests anyone wants to trace.
UNTRACED_URLS = "healthz,readyz,metrics,docs,openapi.json"
_configured = False


def _exporter(protocol: str | None):
    if protocol is None:
        return None
    if protocol.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()  # endpoint, headers, TLS from the standard OTEL_EXPORTER_OTLP_* variables


def _sampler(name: str, ratio: float) -> Sampler:
    root = {"always_on": ALWAYS_ON, "always_off": ALWAYS_OFF}.get(name.removeprefix("parentbased_")) \
        or TraceIdRatioBased(ratio)
    return ParentBased(root) if name.startswith("parentbased_") else root


def setup_tracing(settings) -> None:
    """Installs the tracer provider and instruments gRPC (server, client) and Cassandra. Idempotent.

    `settings` is a runtime.settings.TelemetrySettings."""
    global _configured
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

    from opentelemetry.instrumentation.cassandra import CassandraInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient, GrpcInstrumentorServer, filters

    untraced_rpcs = filters.negate(filters.any_of(filters.health_check(), filters.service_prefix("grpc.reflection")))
    GrpcInstrumentorServer(filter_=untraced_rpcs).instrument()
    GrpcInstrumentorClient(filter_=untraced_rpcs).instrument()
    CassandraInstrumentor().instrument()
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


def instrument_flask(app) -> None:
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(app, excluded_urls=UNTRACED_URLS)


def shutdown() -> None:
    """Flushes spans still in the batch (on graceful shutdown)."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


def mark_user(subject: str) -> None:
    """Records who acted on the current span as a hash of the token's subject (never the token)."""
    import hashlib

    trace.get_current_span().set_attribute("enduser.id", hashlib.sha256(subject.encode()).hexdigest()[:16])
