"""Calls from the edge to the services, each with the call context of the HTTP request it serves.

The context is built once per request (`begin_call`, before any view runs): the deadline (the
configured default, shortened by `Request-Timeout` or `grpc-timeout`, less the time the request
already waited for a worker thread), and the request id; a view adds the verified user token.
Trace context is added by observability.rpc.client_span.
"""

from __future__ import annotations

import re

import grpc
from flask import g, request
from google.protobuf import descriptor as _d
from google.protobuf.message import Message

from edge.transcoding import BadRequest
from edge.worker import QUEUE_WAIT
from runtime.calls import CallContext
from runtime.clients import ServiceClients

_GRPC_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def requested_timeout(default: float) -> float:
    """The request's budget: the configured default, shortened by `Request-Timeout` (seconds) or
    `grpc-timeout` (e.g. "500m") if the client asks for less."""
    timeout = default
    if "Request-Timeout" in request.headers:
        try:
            asked = float(request.headers["Request-Timeout"])
        except ValueError:
            asked = -1.0
        if not 0 < asked < 1e6:
            raise BadRequest("Request-Timeout must be a positive number of seconds", [("Request-Timeout", "invalid")])
        timeout = min(timeout, asked)
    if "grpc-timeout" in request.headers:
        match = _GRPC_TIMEOUT.match(request.headers["grpc-timeout"])
        if not match or int(match.group(1)) == 0:
            raise BadRequest("grpc-timeout must be digits and a unit (H M S m u n)", [("grpc-timeout", "invalid")])
        timeout = min(timeout, int(match.group(1)) * _UNITS[match.group(2)])
    return timeout


def begin_call(default_timeout: float, request_id: str) -> CallContext:
    """The call context of the current HTTP request (kept in flask.g for every call it makes).

    The client's clock started when it sent the request, so the time the request waited in the
    edge's queue (edge.worker) is spent already: a budget it used up ends in a 504 at the first call."""
    waited = request.environ.get(QUEUE_WAIT) or 0.0
    g.call = CallContext.starting_now(requested_timeout(default_timeout) - waited, request_id=request_id)
    return g.call


class Upstreams:
    """Calls to the services named in the configuration, on behalf of the current HTTP request."""

    def __init__(self, clients: ServiceClients):
        self._clients = clients

    def call(self, method: _d.MethodDescriptor, message: Message, call: CallContext | None = None) -> Message:
        """Calls one RPC with `call`, or with the request's own context (no user token) when not given."""
        return self._clients.call(method, message, call if call is not None else g.call)

    def targets(self) -> dict[str, str]:
        return self._clients.targets()

    def channel(self, target: str) -> grpc.Channel:
        return self._clients.channel(target)

    def close(self) -> None:
        self._clients.close()
