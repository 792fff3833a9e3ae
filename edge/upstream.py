"""Calls from the edge to the services: the right channel, the request's deadline and metadata."""

from __future__ import annotations

import re

import grpc
from flask import g, request
from google.protobuf import descriptor as _d
from google.protobuf import message_factory
from google.protobuf.message import Message

from edge.transcoding import BadRequest
from runtime.channels import ChannelPool

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
    """Unary calls to the services named in the configuration."""

    def __init__(self, targets: dict[str, str], pool: ChannelPool):
        self._targets = targets
        self._pool = pool

    def target_of(self, method: _d.MethodDescriptor) -> str:
        return self._targets[method.containing_service.full_name]

    def call(self, method: _d.MethodDescriptor, message: Message, *, timeout: float, token: str | None = None) -> Message:
        """Calls one RPC with the request id, trace context and (verified) user token as metadata."""
        # Trace context (traceparent) is added by the OpenTelemetry gRPC client instrumentation.
        metadata = [("x-request-id", g.request_id)]
        if token:
            metadata.append(("authorization", f"Bearer {token}"))
        stub = self._pool.get(self.target_of(method)).unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message_factory.GetMessageClass(method.output_type).FromString,
        )
        return stub(message, timeout=timeout, metadata=metadata)

    def targets(self) -> dict[str, str]:
        return dict(self._targets)

    def channel(self, target: str) -> grpc.Channel:
        return self._pool.get(target)
