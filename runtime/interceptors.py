"""Server interceptors: who may call which method (deny by default).

The caller is the workload named by its client certificate's SPIFFE id; the method's
`(access.v1.policy)` option lists the workloads it accepts. Health checking and
reflection are open to any peer that completed the mTLS handshake, so an operator
with a CA-signed certificate can always probe a service.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

import grpc

from runtime import errors
from runtime.identity import peer_workload
from runtime.policy import MethodPolicy

_LOGGER = logging.getLogger(__name__)

OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
)

# A check gets the policy, the request (None for client streams) and the context, and aborts to refuse.
Check = Callable[[MethodPolicy, object, grpc.ServicerContext], None]


def _wrap(handler: grpc.RpcMethodHandler, guard: Callable[[object, grpc.ServicerContext], None]):
    """Returns a copy of `handler` that runs `guard` before the method body."""
    if handler.unary_unary:
        def unary_unary(request, context):
            guard(request, context)
            return handler.unary_unary(request, context)
        return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer, handler.response_serializer)
    if handler.unary_stream:
        def unary_stream(request, context):
            guard(request, context)
            yield from handler.unary_stream(request, context)
        return grpc.unary_stream_rpc_method_handler(unary_stream, handler.request_deserializer, handler.response_serializer)
    if handler.stream_unary:
        def stream_unary(requests, context):
            guard(None, context)
            return handler.stream_unary(requests, context)
        return grpc.stream_unary_rpc_method_handler(stream_unary, handler.request_deserializer, handler.response_serializer)

    def stream_stream(requests, context):
        guard(None, context)
        yield from handler.stream_stream(requests, context)
    return grpc.stream_stream_rpc_method_handler(stream_stream, handler.request_deserializer, handler.response_serializer)


class AuthorizationInterceptor(grpc.ServerInterceptor):
    """Allows a call only if the caller's workload is in the method's policy, then runs extra checks.

    `checks` run after the identity check, in order (for example end-user token verification).
    """

    def __init__(self, policies: Mapping[str, MethodPolicy], trust_domain: str, checks: tuple[Check, ...] = ()):
        self._policies = dict(policies)
        self._trust_domain = trust_domain
        self._checks = checks

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_SERVICES):
            return handler
        policy = self._policies.get(method)

        def guard(request, context):
            caller = peer_workload(context, self._trust_domain)
            if policy is None or caller not in policy.callers:
                _LOGGER.warning("denied %s to caller %s", method, caller or "<no identity>")
                errors.abort(
                    context, grpc.StatusCode.PERMISSION_DENIED,
                    f"caller {caller or '<no workload identity>'} may not call {method}",
                    reason="CALLER_NOT_ALLOWED", domain="access", metadata={"method": method, "caller": caller or ""},
                )
            for check in self._checks:
                check(policy, request, context)

        return _wrap(handler, guard)
