"""Server reflection under both names, grpc.reflection.v1 and v1alpha.

grpcio-reflection only ships v1alpha. The v1 protocol has the same messages with the
same field numbers under another package, so one servicer answers both: we add a v1
copy of the file descriptor to the pool (so v1 can be described too) and route the
v1 method to the v1alpha servicer. grpcurl 1.9 (jhump/protoreflect's auto client) asks for v1
and falls back to v1alpha only when v1 is unimplemented; older tools ask for v1alpha.

Reflection hands out every request type and field rule of the service: like every method it has a
policy (`reflection_policies`), and only the operator's workload identity may call it. The other
workloads call from stubs generated from the same protos and never need it.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

from runtime.policy import MethodPolicy

V1_SERVICE = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE = reflection.SERVICE_NAME
OPERATOR_WORKLOADS = frozenset({"operator"})  # the identity `make up`'s dev PKI and compose issue to people


def reflection_policies(callers: frozenset[str] = OPERATOR_WORKLOADS) -> dict[str, MethodPolicy]:
    """Who may call reflection, as a policy beside the services' own (no end-user token involved)."""
    return {method: MethodPolicy(full_method=method, scopes=frozenset(), callers=callers, owner_field="",
                                 bypass_scopes=frozenset())
            for method in (f"/{V1_SERVICE}/ServerReflectionInfo", f"/{V1ALPHA_SERVICE}/ServerReflectionInfo")}


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindServiceByName(V1_SERVICE)
        return
    except KeyError:
        pass
    v1 = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(v1)
    v1.name = "grpc/reflection/v1/reflection.proto"
    v1.package = "grpc.reflection.v1"
    for message in v1.message_type:
        for field in message.field:
            if field.type_name.startswith(".grpc.reflection.v1alpha."):
                field.type_name = field.type_name.replace(".v1alpha.", ".v1.", 1)
    for method in v1.service[0].method:
        method.input_type = method.input_type.replace(".v1alpha.", ".v1.", 1)
        method.output_type = method.output_type.replace(".v1alpha.", ".v1.", 1)
    pool.Add(v1)


def enable_reflection(service_names: Iterable[str], server: grpc.Server) -> None:
    """Serves reflection (v1 and v1alpha) listing `service_names` plus health and reflection."""
    pool = descriptor_pool.Default()
    _add_v1_descriptor(pool)
    names = (*service_names, V1_SERVICE, V1ALPHA_SERVICE)
    servicer = reflection.ReflectionServicer(names, pool=pool)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler(V1ALPHA_SERVICE, {"ServerReflectionInfo": handler}),
        grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": handler}),
    ))
