"""Server interceptors: who may call which method (deny by default).

The caller is the workload named by its client certificate's SPIFFE id; the method's
`(access.v1.policy)` option lists the workloads it accepts. Before that, on every method,
the certificate itself must pass the checks the handshake leaves out (no CA as a leaf, no
weak key or signature, no intermediate CA). Health checking is open to any peer whose
certificate passes them, so an operator or a probe can always ask whether a service serves;
reflection has a policy like every method (runtime/reflection.py).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

import grpc

from observability.logs import request_id_var
from observability.tracing import mark_user
from runtime import calls, errors
from runtime.access import AccessDenied, authorize
from runtime.calls import MAX_CALL_SECONDS, CallContext
from runtime.identity import peer_certificate_problem, peer_workload
from runtime.policy import MethodPolicy
from runtime.tokens import Claims, TokenError, TokenVerifier, bearer_token
from runtime.validation import describe, violations

_LOGGER = logging.getLogger(__name__)

OPEN_SERVICES = ("/grpc.health.v1.Health/",)

_CLAIMS: contextvars.ContextVar[Claims | None] = contextvars.ContextVar("claims", default=None)

# A check gets the policy, the request (None for client streams) and the context, and aborts to refuse.
Check = Callable[[MethodPolicy, object, grpc.ServicerContext], None]


def _wrap(handler: grpc.RpcMethodHandler, guard: Callable[[object, grpc.ServicerContext], None]):
    """Returns a copy of `handler` that runs `guard` before the method body."""
    # Each behaviour is bound to a name of its own: the handler's attributes are Optional, the one checked is set.
    if unary_unary_body := handler.unary_unary:
        def unary_unary(request, context):
            # A fresh context per call, so the caller's claims (a contextvar) never leak to the next call.
            def run():
                guard(request, context)
                return unary_unary_body(request, context)
            return contextvars.copy_context().run(run)
        return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer, handler.response_serializer)
    if (unary_stream_body := handler.unary_stream) and getattr(unary_stream_body, "experimental_non_blocking", False):
        # health's Watch answers through a callback instead of holding a worker thread; keep it so.
        callback_body: Callable[..., Any] = unary_stream_body  # takes the callback too, unlike the stub's type

        def non_blocking(request, context, send_response_callback=None):
            guard(request, context)
            return callback_body(request, context, send_response_callback)
        non_blocking.experimental_non_blocking = True  # type: ignore[attr-defined]
        return grpc.unary_stream_rpc_method_handler(non_blocking, handler.request_deserializer, handler.response_serializer)
    if unary_stream_body:
        def unary_stream(request, context):
            guard(request, context)
            yield from unary_stream_body(request, context)
        return grpc.unary_stream_rpc_method_handler(unary_stream, handler.request_deserializer, handler.response_serializer)
    if stream_unary_body := handler.stream_unary:
        def stream_unary(requests, context):
            guard(None, context)
            return stream_unary_body(requests, context)
        return grpc.stream_unary_rpc_method_handler(stream_unary, handler.request_deserializer, handler.response_serializer)
    stream_stream_body = handler.stream_stream
    assert stream_stream_body is not None, "a handler has one of the four behaviours"

    def stream_stream(requests, context):
        guard(None, context)
        yield from stream_stream_body(requests, context)
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
        if handler is None:
            return handler
        if method.startswith(OPEN_SERVICES):
            return _wrap(handler, lambda request, context: _check_peer_certificate(context, method))
        policy = self._policies.get(method)

        def guard(request, context):
            request_id = dict(context.invocation_metadata()).get("x-request-id", "")[:128]
            request_id_var.set(request_id)
            left = context.time_remaining()
            calls.serve(CallContext.starting_now(MAX_CALL_SECONDS if left is None else left, request_id=request_id))
            _check_peer_certificate(context, method)
            caller = peer_workload(context, self._trust_domain)
            if policy is None or not policy.allows(caller):
                _LOGGER.warning("denied %s to caller %s", method, caller or "<no identity>")
                errors.abort(
                    context, grpc.StatusCode.PERMISSION_DENIED,
                    f"caller {caller or '<no workload identity>'} may not call {method}",
                    reason="CALLER_NOT_ALLOWED", domain="access", metadata={"method": method, "caller": caller or ""},
                )
            for check in self._checks:
                check(policy, request, context)

        return _wrap(handler, guard)


def _check_peer_certificate(context: grpc.ServicerContext, method: str) -> None:
    problem = peer_certificate_problem(context)
    if problem:
        _LOGGER.warning("denied %s: peer certificate refused: %s", method, problem)
        errors.abort(context, grpc.StatusCode.UNAUTHENTICATED, f"client certificate refused: {problem}",
                     reason="PEER_CERTIFICATE_REFUSED", domain="access")


def current_claims() -> Claims | None:
    """The verified end-user token of the call being served (None for methods without scopes)."""
    return _CLAIMS.get()


def required_claims() -> Claims:
    """The verified end-user token of a call to a method with scopes, which the interceptor never lets
    through without one; called from a method without scopes, it is a bug of that servicer."""
    claims = _CLAIMS.get()
    if claims is None:
        raise RuntimeError("required_claims() in a call whose method declares no scopes")
    return claims


def current_call() -> CallContext:
    """The context of the call being served, built once by the interceptor: its deadline, request id
    and (after a token check) the verified user token. Pass it to every call made on its behalf."""
    call = calls.served()
    if call is None:
        raise RuntimeError("current_call() outside a call served through AuthorizationInterceptor")
    return call


def field_rules_check(policy: MethodPolicy, request, context: grpc.ServicerContext) -> None:
    """Refuses a request that leaves a REQUIRED field unset or breaks a field's declared rules
    (runtime/validation.py), naming each field."""
    found = violations(request) if request is not None else []
    if found:
        errors.abort(context, grpc.StatusCode.INVALID_ARGUMENT, describe(found), violations=found,
                     reason="INVALID_FIELDS", domain="validation")


def token_check(verifier: TokenVerifier) -> Check:
    """Re-verifies the end user's token forwarded by the caller and applies the method's scopes
    and owner rule, so a workload cannot act for a user without that user's token."""

    def check(policy: MethodPolicy, request, context: grpc.ServicerContext) -> None:
        if not policy.needs_token:
            return
        metadata = dict(context.invocation_metadata())
        authorization = cast("str | None", metadata.get("authorization"))  # only "-bin" keys carry bytes
        try:
            claims = verifier.verify(bearer_token(authorization))
        except TokenError as error:
            errors.abort(context, grpc.StatusCode.UNAUTHENTICATED, error.description,
                         reason="INVALID_TOKEN" if error.error else "MISSING_TOKEN", domain="access")
        try:
            authorize(policy, claims, request)
        except AccessDenied as denied:
            errors.abort(context, grpc.StatusCode.PERMISSION_DENIED, str(denied), reason=denied.reason,
                         domain="access", metadata={"missing_scopes": " ".join(sorted(denied.missing_scopes))})
        _CLAIMS.set(claims)
        calls.serve(current_call().with_token(claims.token))
        mark_user(claims.subject)

    return check
