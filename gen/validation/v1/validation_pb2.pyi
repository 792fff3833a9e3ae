from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
RULES_FIELD_NUMBER: _ClassVar[int]
rules: _descriptor.FieldDescriptor

class FieldRules(_message.Message):
    __slots__ = ("uuid", "min_len", "max_len", "pattern", "pattern_description", "min", "max", "min_items", "max_items", "example", "declared_scope")
    UUID_FIELD_NUMBER: _ClassVar[int]
    MIN_LEN_FIELD_NUMBER: _ClassVar[int]
    MAX_LEN_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    PATTERN_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    MIN_ITEMS_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    DECLARED_SCOPE_FIELD_NUMBER: _ClassVar[int]
    uuid: bool
    min_len: int
    max_len: int
    pattern: str
    pattern_description: str
    min: int
    max: int
    min_items: int
    max_items: int
    example: str
    declared_scope: bool
    def __init__(self, uuid: _Optional[bool] = ..., min_len: _Optional[int] = ..., max_len: _Optional[int] = ..., pattern: _Optional[str] = ..., pattern_description: _Optional[str] = ..., min: _Optional[int] = ..., max: _Optional[int] = ..., min_items: _Optional[int] = ..., max_items: _Optional[int] = ..., example: _Optional[str] = ..., declared_scope: _Optional[bool] = ...) -> None: ...
