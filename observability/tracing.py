"""Tracing setup: resource, parent-based ratio sampler, OTLP export, instrumentations."""

from __future__ import annotations

import logging
import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

_LOGGER = logging.getLogger(__name__)
# Probes and reflection are not requests anyone wants to trace.
UNTRACED_URLS = "healthz,readyz,metrics,docs,openapi.json"
_configured = False


def _exporter():
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return None
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"))
    if protocol.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()  # endpoint, headers, TLS from the standard OTEL_EXPORTER_OTLP_* variables


def _ratio() -> float:
    try:
        return min(1.0, max(0.0, float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))))
    except ValueError:
        return 1.0


def setup_tracing(service: str) -> None:
    """Installs the tracer provider and instruments gRPC (server, client) and Cassandra. Idempotent."""
    global _configured
    if _configured:
        return
    resource = Resource.create({
        "service.name": os.environ.get("OTEL_SERVICE_NAME", service),
        "service.version": os.environ.get("SERVICE_VERSION", "0.1.0"),
        "deployment.environment": os.environ.get("DEPLOYMENT_ENVIRONMENT", "dev"),
    })
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(_ratio())))
    exporter = _exporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from opentelemetry.instrumentation.cassandra import CassandraInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient, GrpcInstrumentorServer, filters

    untraced = filters.negate(filters.any_of(filters.health_check(), filters.service_prefix("grpc.reflection")))
    GrpcInstrumentorServer(filter_=untraced).instrument()
    GrpcInstrumentorClient(filter_=untraced).instrument()
    CassandraInstrumentor().instrument()
    _configured = True
    _LOGGER.info("tracing %s (export: %s)", service, "otlp" if exporter else "off")


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
