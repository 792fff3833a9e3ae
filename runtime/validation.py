"""What a request's fields must be, as the protos declare it: `(google.api.field_behavior) = REQUIRED`
and `(validation.v1.rules)` (proto/validation/v1/validation.proto).

Checked twice with the same code: by the edge before it calls a service, and by every service's
interceptor before a method runs. The edge's OpenAPI document states the same declarations as
JSON Schema (edge/openapi.py), so the contract and the server cannot drift.

    violations(request)   # [("items[0].quantity", "must be between 1 and 1000"), ...]; [] when valid

What "set" means for a required field:
- a message field, or a scalar declared `optional` (explicit presence): present on the wire;
- a plain proto3 scalar (no presence): not its default ("" or 0), since the two cannot be told apart;
- a repeated field: at least one element.
The rules apply to every value a field holds (a plain scalar's default too: a rule that allows
"" says so), except to a required field that is missing (that is its one violation) and to an
optional field that is not present.

Update requests (a request with an `update_mask`, AIP-134) change only the fields the mask names,
so of the resource they carry only those fields are checked (with no mask: those given a value),
and the mask may name only the resource's fields that a client can set (not OUTPUT_ONLY). A mask
names whole fields ("price", never "price.amount_minor"): a masked message field replaces the
stored one, so it is checked whole, its own REQUIRED fields and rules included, recursively. An
update cannot leave half a price behind.

    declared_max(field)      # a field's declared upper bound, for limits that bind results too
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, cast

from google.api import field_behavior_pb2
from google.protobuf import descriptor as _d
from google.protobuf.message import Message

from validation.v1 import validation_pb2

_REQUIRED = field_behavior_pb2.REQUIRED
_MASK = "google.protobuf.FieldMask"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def behaviours(field: _d.FieldDescriptor) -> set[int]:
    return set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def rules_of(field: _d.FieldDescriptor) -> validation_pb2.FieldRules | None:
    options: Any = field.GetOptions()  # the generated extension is typed as a plain FieldDescriptor
    return options.Extensions[validation_pb2.rules] if options.HasExtension(validation_pb2.rules) else None


def declared_max(field: _d.FieldDescriptor) -> int:
    """The upper bound a field's rules declare, for a service whose results must keep it too (stock
    after an adjustment, an order's total). LookupError when the proto declares none."""
    rules = rules_of(field)
    if rules is None or not rules.HasField("max"):
        raise LookupError(f"{field.full_name} declares no max in its (validation.v1.rules)")
    return rules.max


def declared_max_of(message: type[Message], field_name: str) -> int:
    """declared_max of a message's field, by name."""
    descriptor = cast(_d.Descriptor, message.DESCRIPTOR)  # the stubs add upb's type, which is the same thing
    return declared_max(descriptor.fields_by_name[field_name])


def python_pattern(pattern: str) -> str:
    """A rule's pattern for Python's `re.search`: ECMA-262's `$` never matches before a final
    newline, Python's does, so a closing `$` becomes `\\Z`."""
    return pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern


@dataclass(frozen=True)
class _Field:
    descriptor: _d.FieldDescriptor
    required: bool
    rules: validation_pb2.FieldRules | None
    pattern: re.Pattern | None
    nested: _d.Descriptor | None  # a message type with something to check inside
    is_resource: bool              # the resource an update request carries

    @property
    def name(self) -> str:
        return self.descriptor.name


@functools.cache
def update_mask_field(descriptor: _d.Descriptor) -> _d.FieldDescriptor | None:
    field = descriptor.fields_by_name.get("update_mask")
    return field if field is not None and field.message_type is not None and field.message_type.full_name == _MASK else None


@functools.cache
def updatable_fields(resource: _d.Descriptor) -> tuple[str, ...]:
    """The fields of a resource an update mask may name: those a client sets (not OUTPUT_ONLY)."""
    return tuple(f.name for f in resource.fields if field_behavior_pb2.OUTPUT_ONLY not in behaviours(f))


@functools.cache
def _fields(descriptor: _d.Descriptor) -> tuple[_Field, ...]:
    is_update = update_mask_field(descriptor) is not None
    found = []
    for field in descriptor.fields:
        message_type = field.message_type
        is_map = message_type is not None and message_type.GetOptions().map_entry
        nested = message_type if (message_type is not None and not is_map and _has_checks(message_type)) else None
        rules = rules_of(field)
        required = _REQUIRED in behaviours(field)
        if required or nested is not None or rules is not None:
            pattern = re.compile(python_pattern(rules.pattern)) if rules is not None and rules.pattern else None
            is_resource = is_update and message_type is not None and message_type.full_name != _MASK
            found.append(_Field(field, required, rules, pattern, nested, is_resource))
    return tuple(found)


def _has_checks(descriptor: _d.Descriptor, seen: frozenset[str] = frozenset()) -> bool:
    if descriptor.full_name in seen:
        return False  # recursive types (Struct, Value) declare nothing
    seen = seen | {descriptor.full_name}
    return any(_REQUIRED in behaviours(f) or rules_of(f) is not None
               or (f.message_type is not None and _has_checks(f.message_type, seen)) for f in descriptor.fields)


def violations(message: Message, prefix: str = "", only: frozenset[str] | None = None) -> list[tuple[str, str]]:
    """(field path, what is wrong) for every declared rule the message breaks, in proto names."""
    found: list[tuple[str, str]] = []
    mask_field = update_mask_field(message.DESCRIPTOR)
    for field in _fields(message.DESCRIPTOR):
        if only is not None and field.name not in only:
            continue
        path = f"{prefix}{field.name}"
        value = getattr(message, field.name)
        if field.descriptor.is_repeated:
            found += _check_repeated(field, value, path)
            continue
        present = message.HasField(field.name) if field.descriptor.has_presence else value != field.descriptor.default_value
        if field.required and not present:
            found.append((path, "is required"))
        elif field.nested is not None and present:
            if field.is_resource and mask_field is not None:
                found += _check_update(message, field, value, path)
            else:
                found += violations(value, f"{path}.")
        elif field.rules is not None and (present or not field.descriptor.has_presence):
            found += [(path, problem) for problem in _value_problems(field, value)]
    return found


def _check_repeated(field: _Field, values, path: str) -> list[tuple[str, str]]:
    found = []
    rules = field.rules
    if field.required and not len(values):
        return [(path, "is required")]
    if rules is not None and rules.min_items and len(values) < rules.min_items:
        found.append((path, f"must have at least {rules.min_items} items"))
    if rules is not None and rules.max_items and len(values) > rules.max_items:
        return [*found, (path, f"must have at most {rules.max_items} items")]
    for i, item in enumerate(values):
        if field.nested is not None:
            found += violations(item, f"{path}[{i}].")
        elif rules is not None:
            found += [(f"{path}[{i}]", problem) for problem in _value_problems(field, item)]
    return found


def _check_update(request: Message, field: _Field, resource: Message, path: str) -> list[tuple[str, str]]:
    """The masked fields of the resource an update carries, and the mask's own paths."""
    allowed = updatable_fields(resource.DESCRIPTOR)
    mask: Any = getattr(request, "update_mask")  # noqa: B009  (every update request has one; Message does not say so)
    paths = list(mask.paths)
    unknown = [("update_mask", f"unknown field {p!r}; allowed: {', '.join(allowed)}") for p in paths if p not in allowed]
    if unknown:
        return unknown
    if not paths:  # no mask: the fields given a value
        paths = [f.name for f in resource.DESCRIPTOR.fields if f.name in allowed and _given(resource, f)]
    return violations(resource, f"{path}.", frozenset(paths))


def _given(message: Message, field: Any) -> bool:
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.has_presence:
        return message.HasField(field.name)
    return getattr(message, field.name) != field.default_value


def _value_problems(field: _Field, value) -> list[str]:
    rules = field.rules
    if rules is None:
        return []
    if isinstance(value, str):
        return _string_problems(field, rules, value)
    if isinstance(value, int) and not isinstance(value, bool):
        low = rules.min if rules.HasField("min") else None
        high = rules.max if rules.HasField("max") else None
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                return [f"must be between {low} and {high}"]
            return [f"must be at least {low}" if low is not None else f"must be at most {high}"]
    return []


def _string_problems(field: _Field, rules: validation_pb2.FieldRules, value: str) -> list[str]:
    if rules.uuid and not _UUID.match(value):
        return ["must be a UUID"]
    problems = []
    if rules.min_len and len(value) < rules.min_len:
        problems.append(f"must be at least {rules.min_len} characters")
    if rules.max_len and len(value) > rules.max_len:
        problems.append(f"must be at most {rules.max_len} characters")
    if field.pattern is not None and not field.pattern.search(value):
        problems.append(f"must {rules.pattern_description}" if rules.pattern_description
                        else f"must match {rules.pattern}")
    return problems


def describe(found: list[tuple[str, str]]) -> str:
    """One line for an error's detail: "username: is required; password: must be at least 10 characters"."""
    return "; ".join(f"{path}: {problem}" for path, problem in found)
