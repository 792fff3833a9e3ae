from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
POLICY_FIELD_NUMBER: _ClassVar[int]
policy: _descriptor.FieldDescriptor
SCOPES_FIELD_NUMBER: _ClassVar[int]
scopes: _descriptor.FieldDescriptor

class AccessPolicy(_message.Message):
    __slots__ = ("scopes", "callers", "owner_field", "bypass_scopes")
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    CALLERS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_FIELD_NUMBER: _ClassVar[int]
    BYPASS_SCOPES_FIELD_NUMBER: _ClassVar[int]
    scopes: _containers.RepeatedScalarFieldContainer[str]
    callers: _containers.RepeatedScalarFieldContainer[str]
    owner_field: str
    bypass_scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, scopes: _Optional[_Iterable[str]] = ..., callers: _Optional[_Iterable[str]] = ..., owner_field: _Optional[str] = ..., bypass_scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class Scope(_message.Message):
    __slots__ = ("name", "description", "granted_to")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    GRANTED_TO_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    granted_to: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., granted_to: _Optional[_Iterable[str]] = ...) -> None: ...

class ServiceScopes(_message.Message):
    __slots__ = ("scopes",)
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    scopes: _containers.RepeatedCompositeFieldContainer[Scope]
    def __init__(self, scopes: _Optional[_Iterable[_Union[Scope, _Mapping]]] = ...) -> None: ...
