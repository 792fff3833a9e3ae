"""The comments of the protos, by full name, for the OpenAPI document's descriptions.

`make proto` writes gen/descriptors.binpb: proto/'s files as a FileDescriptorSet with source info
(protoc --include_source_info). A comment written above a message, field, enum, enum value,
service or RPC is found here under that element's full name:

    comments()["shop.orders.v1.OrdersService.CreateOrder"]  -> "Places an order ..."
"""

from __future__ import annotations

import functools
import pathlib

from google.protobuf import descriptor_pb2

from access.v1 import access_pb2

DESCRIPTOR_SET = pathlib.Path(access_pb2.__file__).resolve().parents[2] / "descriptors.binpb"
# FileDescriptorProto / DescriptorProto / EnumDescriptorProto / ServiceDescriptorProto field numbers
_MESSAGES, _ENUMS, _SERVICES = 4, 5, 6
_FIELDS, _NESTED, _NESTED_ENUMS = 2, 3, 4
_VALUES, _METHODS = 2, 2


def _names(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """Source-info path -> full name of every element of one file."""
    names: dict[tuple[int, ...], str] = {}
    package = f"{file.package}." if file.package else ""

    def enum(path: tuple[int, ...], prefix: str, proto: descriptor_pb2.EnumDescriptorProto) -> None:
        names[path] = prefix + proto.name
        for i, value in enumerate(proto.value):
            names[(*path, _VALUES, i)] = f"{prefix}{proto.name}.{value.name}"

    def message(path: tuple[int, ...], prefix: str, proto: descriptor_pb2.DescriptorProto) -> None:
        full = prefix + proto.name
        names[path] = full
        for i, field in enumerate(proto.field):
            names[(*path, _FIELDS, i)] = f"{full}.{field.name}"
        for i, nested in enumerate(proto.nested_type):
            message((*path, _NESTED, i), f"{full}.", nested)
        for i, nested_enum in enumerate(proto.enum_type):
            enum((*path, _NESTED_ENUMS, i), f"{full}.", nested_enum)

    for i, proto in enumerate(file.message_type):
        message((_MESSAGES, i), package, proto)
    for i, enum_proto in enumerate(file.enum_type):
        enum((_ENUMS, i), package, enum_proto)
    for i, service in enumerate(file.service):
        names[(_SERVICES, i)] = package + service.name
        for j, method in enumerate(service.method):
            names[(_SERVICES, i, _METHODS, j)] = f"{package}{service.name}.{method.name}"
    return names


@functools.cache
def comments() -> dict[str, str]:
    """Full name -> its leading comment (or, failing that, its trailing one), whitespace tidied.
    Empty when the descriptor set is missing (a checkout that never ran make proto)."""
    if not DESCRIPTOR_SET.is_file():
        return {}
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    found: dict[str, str] = {}
    for file in files:
        names = _names(file)
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            text = (location.leading_comments or location.trailing_comments).strip()
            if name and text:
                found[name] = " ".join(line.strip() for line in text.splitlines())
    return found
