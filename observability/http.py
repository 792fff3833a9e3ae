"""Telemetry of a Flask app, in three hooks: a server span, RED metrics and one JSON access line per request.

    instrument_flask(app, untraced=("/healthz", "/readyz"), access_logger="edge.access")   # path prefixes

The span continues the caller's W3C trace context, is named "<METHOD> <route template>" and carries the
stable HTTP semantic-convention attributes; 5xx answers mark it as an error. Routes are URL rule
templates, never raw paths, and an unknown method counts as "other", so no client can grow the number
of metric series. Probes (the `untraced` paths) get neither spans, metrics nor access lines.

Written here rather than taken from opentelemetry-instrumentation-flask: that one builds a dozen
attributes from the WSGI environ on every request and was the largest single cost of a request.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request
from opentelemetry import context, trace

from observability import metrics
from observability.tracing import extract_http, tracer

_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def instrument_flask(app: Flask, *, untraced: tuple[str, ...] = (), access_logger: str = "http.access") -> None:
    access = logging.getLogger(access_logger)

    @app.before_request
    def _begin():
        if untraced and request.path.startswith(untraced):
            g._telemetry = None
            return
        rule = request.url_rule
        route = rule.rule if rule is not None else "<unmatched>"
        method = request.method if request.method in _HTTP_METHODS else "other"
        span = tracer().start_span(f"{method} {route}", context=extract_http(request.headers), kind=trace.SpanKind.SERVER,
                                   attributes={"http.request.method": method, "http.route": route,
                                               "url.path": request.path, "url.scheme": request.scheme})
        token = context.attach(trace.set_span_in_context(span))
        g._telemetry = (span, token, route, method, time.perf_counter(), metrics.http_started(route, method))

    @app.after_request
    def _answered(response):
        state = g.get("_telemetry")
        if state is not None:
            span, _token, route, method, started, in_flight = state
            status = response.status_code
            elapsed = time.perf_counter() - started
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            metrics.http_finished(in_flight, route, method, status, elapsed)
            access.info("%s %s %s", method, route, status, extra={"http": {
                "method": method, "route": route, "status": status, "duration_ms": round(elapsed * 1000, 2)}})
        return response

    @app.teardown_request
    def _end(error):
        state = g.pop("_telemetry", None)
        if state is not None:
            span, token = state[0], state[1]
            if error is not None:
                span.record_exception(error)
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
            span.end()
            context.detach(token)
