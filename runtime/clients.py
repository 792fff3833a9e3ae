"""Calls from one service to another: the channel pool, the remaining deadline, the user's token.

    clients = ServiceClients(settings.tls, {"shop.catalog.v1.CatalogService": "catalog:50052"})
    reply = clients.call(method_descriptor, request, context=incoming_context, token=claims.token)

Every outgoing call gets the time left of the incoming call (less a margin for the reply),
capped so no call waits forever, and carries the request id and the end user's token.
"""

from __future__ import annotations

import grpc
from google.protobuf import descriptor as _d
from google.protobuf import message_factory
from google.protobuf.message import Message

from runtime.channels import ChannelPool
from runtime.descriptors import load_method, load_service
from runtime.settings import ConfigError, Env, TlsFiles
from runtime.tokens import JwksCache, TokenVerifier, VerifierSettings, jwks_over_grpc

MAX_CALL_SECONDS = 10.0
_MARGIN_SECONDS = 0.05


class DeadlineExpired(Exception):
    """The incoming call has no time left for another call."""


def remaining(context: grpc.ServicerContext | None, cap: float = MAX_CALL_SECONDS) -> float:
    """Seconds an outgoing call may take: the incoming call's remaining budget, at most `cap`."""
    left = context.time_remaining() if context is not None else None
    budget = cap if left is None else min(cap, left - _MARGIN_SECONDS)
    if budget <= 0:
        raise DeadlineExpired("the incoming call's deadline has passed")
    return budget


class ServiceClients:
    """Unary calls to other services over pooled mTLS channels."""

    def __init__(self, tls: TlsFiles, targets: dict[str, str]):
        services = {name: load_service(name) for name in targets}
        by_target: dict[str, list[_d.ServiceDescriptor]] = {}
        for name, target in targets.items():
            by_target.setdefault(target, []).append(services[name])
        self._targets = targets
        self._pool = ChannelPool(tls, by_target)

    def call(self, method: _d.MethodDescriptor, request: Message, *, context: grpc.ServicerContext | None = None,
             timeout: float | None = None, token: str | None = None, request_id: str = "") -> Message:
        metadata = []
        if token:
            metadata.append(("authorization", f"Bearer {token}"))
        if request_id:
            metadata.append(("x-request-id", request_id))
        target = self._targets[method.containing_service.full_name]
        stub = self._pool.get(target).unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message_factory.GetMessageClass(method.output_type).FromString)
        return stub(request, timeout=timeout if timeout is not None else remaining(context), metadata=metadata)

    def targets(self) -> dict[str, str]:
        return dict(self._targets)

    def channel(self, target: str) -> grpc.Channel:
        return self._pool.get(target)

    def close(self) -> None:
        self._pool.close()


def remote_token_verifier(env: Env, tls: TlsFiles) -> tuple[TokenVerifier, ServiceClients]:
    """A verifier whose keys come from the JWKS RPC named by JWKS_METHOD at JWKS_TARGET."""
    method_name = env.str("JWKS_METHOD")
    try:
        method = load_method(method_name)
    except LookupError as error:
        raise ConfigError(f"JWKS_METHOD: {error}") from None
    clients = ServiceClients(tls, {method.containing_service.full_name: env.str("JWKS_TARGET")})
    settings = VerifierSettings.from_env(env)
    fetch = jwks_over_grpc(lambda m, r, t: clients.call(m, r, timeout=t), method)
    return TokenVerifier(settings, JwksCache(fetch, settings.jwks_refresh_seconds)), clients
