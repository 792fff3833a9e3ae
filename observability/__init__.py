"""Telemetry for every process: traces (OTLP), RED metrics (Prometheus) and JSON logs.

    from observability import setup_telemetry
    setup_telemetry(settings.telemetry)   # once per process, before servers and channels are built

`settings.telemetry` is a runtime.settings.TelemetrySettings, read from the standard OpenTelemetry
environment (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER(_ARG), OTEL_EXPORTER_OTLP_ENDPOINT and
_PROTOCOL...) plus DEPLOYMENT_ENVIRONMENT, SERVICE_VERSION, LOG_LEVEL and LOG_FORMAT (json or text),
and checked at start.
With no endpoint configured nothing is exported and nothing fails: spans still give log lines
their trace ids.
"""

from observability.logs import configure_logging, request_id_var
from observability.tracing import setup_tracing

__all__ = ["configure_logging", "request_id_var", "setup_telemetry"]


def setup_telemetry(settings) -> None:
    """JSON logs on stdout and tracing (HTTP, gRPC and store spans from observability.http, .rpc and
    .store)."""
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    setup_tracing(settings)
