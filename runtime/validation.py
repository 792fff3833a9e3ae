"""Required fields, as the protos declare them (`[(google.api.field_behavior) = REQUIRED]`).

Checked twice with the same rule: by the edge before it calls a service, and by every service's
interceptor before a method runs, so `{"quantity": 0}` and `{}` are told apart and a missing
field is a clear INVALID_ARGUMENT (HTTP 400) naming it, never a silent default.

What "set" means for a required field:
- a message field, or a scalar declared `optional` (explicit presence): present on the wire;
- a plain proto3 scalar (no presence): not its default ("" or 0), since the two cannot be told apart;
- a repeated field: at least one element.
Set sub-messages and elements of repeated messages are checked too, except in update requests
(a request with an `update_mask`): there only the fields the mask names change (AIP-134), so the
resource's own required fields are not demanded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from google.api import field_behavior_pb2
from google.protobuf import descriptor as _d
from google.protobuf.message import Message

_REQUIRED = field_behavior_pb2.REQUIRED
_MASK = "google.protobuf.FieldMask"


@dataclass(frozen=True)
class _Rule:
    name: str
    required: bool
    repeated: bool
    has_presence: bool
    nested: _d.Descriptor | None  # a message type with required fields somewhere inside


def _is_required(field: _d.FieldDescriptor) -> bool:
    return _REQUIRED in field.GetOptions().Extensions[field_behavior_pb2.field_behavior]


@functools.cache
def _rules(descriptor: _d.Descriptor) -> tuple[_Rule, ...]:
    """The fields of a message that need looking at: required ones, and messages that hold some."""
    is_update = any(f.name == "update_mask" and f.message_type is not None and f.message_type.full_name == _MASK
                    for f in descriptor.fields)
    rules = []
    for field in descriptor.fields:
        message_type = field.message_type
        is_map = message_type is not None and message_type.GetOptions().map_entry
        nested = message_type if (message_type is not None and not is_map and not is_update
                                  and _holds_required(message_type)) else None
        required = _is_required(field)
        if required or nested is not None:
            rules.append(_Rule(field.name, required, field.is_repeated, field.has_presence, nested))
    return tuple(rules)


def _holds_required(descriptor: _d.Descriptor, seen: frozenset[str] = frozenset()) -> bool:
    if descriptor.full_name in seen:
        return False  # recursive types (Struct, Value) hold nothing required
    seen = seen | {descriptor.full_name}
    return any(_is_required(f) or (f.message_type is not None and _holds_required(f.message_type, seen))
               for f in descriptor.fields)


def missing_fields(message: Message, prefix: str = "") -> list[tuple[str, str]]:
    """(field path, "is required") for every required field not set, e.g. ("items[0].quantity", ...)."""
    violations = []
    for rule in _rules(message.DESCRIPTOR):
        path = f"{prefix}{rule.name}"
        value = getattr(message, rule.name)
        if rule.repeated:
            if rule.required and not len(value):
                violations.append((path, "is required"))
            if rule.nested is not None:
                for i, item in enumerate(value):
                    violations += missing_fields(item, f"{path}[{i}].")
            continue
        present = message.HasField(rule.name) if rule.has_presence else bool(value)
        if rule.required and not present:
            violations.append((path, "is required"))
        elif rule.nested is not None and present:
            violations += missing_fields(value, f"{path}.")
    return violations
