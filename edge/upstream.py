"""Calls from the edge to the services: the right channel, the request's deadline and metadata."""

from __future__ import annotations

import re

import grpc
from flask import g, request
from google.protobuf import descriptor as _d
from google.protobuf.message import Message

from edge.transcoding import BadRequest
from runtime.clients import ServiceClients

_GRPC_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def requested_timeout(default: float) -> float:
    """The call's deadline: the configured default, shortened by `Request-Timeout` (seconds) or
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


class Upstreams:
    """Calls to the services named in the configuration, carrying what this HTTP request gives them."""

    def __init__(self, clients: ServiceClients):
        self._clients = clients

    def call(self, method: _d.MethodDescriptor, message: Message, *, timeout: float, token: str | None = None) -> Message:
        """Calls one RPC with the request id and the (verified) user token as metadata; the trace
        context is added by the OpenTelemetry gRPC client instrumentation."""
        return self._clients.call(method, message, timeout=timeout, token=token, request_id=g.request_id)

    def targets(self) -> dict[str, str]:
        return self._clients.targets()

    def channel(self, target: str) -> grpc.Channel:
        return self._clients.channel(target)
