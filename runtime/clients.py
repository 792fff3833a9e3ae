"""Calls from one workload to another: pooled mTLS channels, the caller's context on every call.

    clients = ServiceClients(settings.tls, {"pkg.v1.InventoryService": "inventory:50052"})
    reply = clients.call(method_descriptor, request, call)      # call: runtime.calls.CallContext

Every call gets the time left of the request it serves (CallContext.time_left()), carries the
request id and the end user's token, and waits for a connection within that time
(wait_for_ready): a peer that is restarting costs a short wait, not a failed request.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from google.protobuf import descriptor as _d
from google.protobuf import message_factory
from google.protobuf.message import Message

from observability.rpc import client_span
from runtime.calls import CallContext
from runtime.channels import ChannelPool
from runtime.descriptors import load_method, load_service
from runtime.settings import KeySource, TlsFiles
from runtime.tokens import TokenVerifier, VerifierSettings, jwks_over_grpc, token_verifier


class ServiceClients:
    """Unary calls to other services over pooled mTLS channels."""

    def __init__(self, tls: TlsFiles, targets: dict[str, str]):
        services = {name: load_service(name) for name in targets}
        by_target: dict[str, list[_d.ServiceDescriptor]] = {}
        for name, target in targets.items():
            by_target.setdefault(target, []).append(services[name])
        self._targets = targets
        self._pool = ChannelPool(tls, by_target)
        # One callable per method, made on first use on the channel of the current process.
        self._stubs: dict[str, tuple[grpc.Channel, str, Callable]] = {}

    def call(self, method: _d.MethodDescriptor, request: Message, call: CallContext) -> Message:
        """Calls one RPC for `call`; raises grpc.RpcError, or DeadlineExpired when no time is left."""
        service = method.containing_service.full_name
        channel = self._pool.get(self._targets[service])
        entry = self._stubs.get(method.full_name)
        if entry is None or entry[0] is not channel:  # first call, or a new channel after a fork
            path = f"/{service}/{method.name}"
            entry = self._stubs[method.full_name] = (channel, path, channel.unary_unary(
                path, request_serializer=_serialize, response_deserializer=_parser(method)))
        _, path, stub = entry
        timeout, metadata = call.time_left(), call.metadata()
        with client_span(path, metadata):
            return stub(request, timeout=timeout, metadata=metadata, wait_for_ready=True)

    def targets(self) -> dict[str, str]:
        return dict(self._targets)

    def channel(self, target: str) -> grpc.Channel:
        return self._pool.get(target)

    def close(self) -> None:
        self._pool.close()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _parser(method: _d.MethodDescriptor) -> Callable[[bytes], Message]:
    return message_factory.GetMessageClass(method.output_type).FromString


def remote_token_verifier(keys: KeySource, settings: VerifierSettings,
                          tls: TlsFiles) -> tuple[TokenVerifier, ServiceClients]:
    """A verifier whose keys come from the JWKS RPC `keys.method` at `keys.target`; close the clients at stop."""
    method = load_method(keys.method)  # KeySource.from_env has checked it exists
    clients = ServiceClients(tls, {method.containing_service.full_name: keys.target})
    fetch = jwks_over_grpc(lambda m, r, t: clients.call(m, r, CallContext.starting_now(t)), method)
    return token_verifier(settings, fetch), clients
