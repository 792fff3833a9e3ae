"""Telemetry for every process: traces (OTLP), RED metrics (Prometheus) and JSON logs.

    from observability import setup_telemetry
    setup_telemetry("orders")            # once per process, before servers and channels are built

Configuration is the standard OpenTelemetry environment (OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_*...), plus
DEPLOYMENT_ENVIRONMENT and SERVICE_VERSION. With no endpoint configured nothing is exported
and nothing fails: spans still give log lines their trace ids.
"""

from observability.logs import configure_logging, request_id_var
from observability.tracing import setup_tracing

__all__ = ["setup_telemetry", "configure_logging", "request_id_var"]


def setup_telemetry(service: str, *, log_level: str = "INFO") -> None:
    """JSON logs on stdout and tracing with the gRPC, Flask-ready and Cassandra instrumentations."""
    configure_logging(service, log_level)
    setup_tracing(service)
