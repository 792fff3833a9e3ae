"""Telemetry of a Flask app, around the whole app: a server span, RED metrics and one JSON access line per request.

    instrument_flask(app, untraced=("/healthz", "/readyz"), access_logger="edge.access",   # path prefixes
                     trusted_trace_sources=(ipaddress.ip_network("10.1.0.0/16"),))

It wraps the app's WSGI callable (as OpenTelemetry's Flask instrumentation wraps app.wsgi_app), so
every answer is measured, whoever made it: a route, an error handler, or a hook that refused the
request before any route ran (overload, a bad header). The span continues the caller's W3C trace
context only when the caller's address is in `trusted_trace_sources` (an operator forcing a trace
of one request with a sampled `traceparent`); anyone else's request starts a trace of its own, which
the sampler decides and which links to theirs, so no client can make every request traced or join
its requests to another's trace. The span is current while the app runs (the gRPC calls it makes
are its children), is named "<METHOD> <route template>" and carries the stable HTTP
semantic-convention attributes; 5xx answers mark it as an error. Routes are URL rule templates, never
raw paths, and an unknown method counts as "other", so no client can grow the number of metric series. Probes (the `untraced` paths) get
neither spans, metrics nor access lines.

Written here rather than taken from opentelemetry-instrumentation-flask: that one builds a dozen
attributes from the WSGI environ on every request and was the largest single cost of a request.
"""

from __future__ import annotations

import ipaddress
import logging
import time

from flask import Flask
from opentelemetry import context, trace
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException

from observability import metrics
from observability.tracing import extract_http, tracer

_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # the route of a request no URL rule takes (404, 405)
_PEER = "REMOTE_ADDR"  # the WSGI environ's key for the caller's address


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def caller_context(environ, trusted: Networks) -> tuple[context.Context, list[trace.Link]]:
    """(parent context, links) for a request's server span: the caller's trace context if its address
    is trusted; otherwise a new trace, linked to the caller's if it sent one."""
    incoming = extract_http(EnvironHeaders(environ))
    if trusted and _address_in(environ.get(_PEER, ""), trusted):
        return incoming, []
    theirs = trace.get_current_span(incoming).get_span_context()
    return context.Context(), [trace.Link(theirs)] if theirs.is_valid else []


def _address_in(address: str, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # a Unix socket, or no address at all
        return False
    return any(ip in network for network in networks)


def instrument_flask(app: Flask, *, untraced: tuple[str, ...] = (), access_logger: str = "http.access",
                     trusted_trace_sources: Networks = ()) -> None:
    access = logging.getLogger(access_logger)
    served = app.wsgi_app

    def route_of(environ) -> str:
        try:
            rule, _ = app.url_map.bind_to_environ(environ).match(return_rule=True)
        except HTTPException:
            return UNMATCHED
        return rule.rule

    def measured(environ, start_response):
        if untraced and environ["PATH_INFO"].startswith(untraced):
            return served(environ, start_response)
        method = environ["REQUEST_METHOD"]
        method = method if method in _HTTP_METHODS else "other"
        route = route_of(environ)
        parent, links = caller_context(environ, trusted_trace_sources)
        span = tracer().start_span(f"{method} {route}", context=parent, links=links, kind=trace.SpanKind.SERVER,
                                   attributes={"http.request.method": method, "http.route": route,
                                               "url.path": environ["PATH_INFO"]})
        token = context.attach(trace.set_span_in_context(span))
        started, in_flight = time.perf_counter(), metrics.http_started(route, method)
        answered: list[int] = []

        def start_response_noted(status: str, headers, exc_info=None):
            answered[:] = [int(status.split(" ", 1)[0])]
            return start_response(status, headers, exc_info)

        try:
            return served(environ, start_response_noted)
        except BaseException as error:  # Flask answers what a route raises; this is the server itself failing
            span.record_exception(error)
            raise
        finally:
            status = answered[0] if answered else 500
            elapsed = time.perf_counter() - started
            span.set_attributes({"http.response.status_code": status, "url.scheme": environ["wsgi.url_scheme"]})
            if status >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            metrics.http_finished(in_flight, route, method, status, elapsed)
            access.info("%s %s %s", method, route, status, extra={"http": {
                "method": method, "route": route, "status": status, "duration_ms": round(elapsed * 1000, 2)}})
            span.end()
            context.detach(token)

    app.wsgi_app = measured  # type: ignore[method-assign]
