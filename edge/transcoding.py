"""HTTP <-> gRPC translation for one `google.api.http` binding, by the proto3 JSON mapping.

A request message is assembled from three places, as the HttpRule documentation says:
path variables, the JSON body (`body: "*"` or one field), and query parameters for
every other field. Anything that names no field, or has the wrong type, is a
`BadRequest` naming the offending field; nothing is silently dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.api import annotations_pb2, field_behavior_pb2
from google.protobuf import descriptor as _d
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message

from edge.restnames import rest_names
from edge.templates import PathTemplate, parse
from runtime.validation import behaviours, update_mask_field
from transcoding.v1 import transcoding_pb2

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

# Well-known types whose JSON form is a string, so a query parameter can carry them.
_STRING_LIKE = {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}


class BadRequest(Exception):
    """The HTTP request cannot become the RPC's request; `violations` name the fields."""

    def __init__(self, message: str, violations: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.violations = violations or []


@dataclass(frozen=True)
class Binding:
    """One HTTP route of one RPC, with what every request to it needs worked out once, at start."""

    method: _d.MethodDescriptor
    http_method: str
    template: PathTemplate
    body: str            # "", "*" or a field name
    response_body: str   # "" or a field name
    request_class: type[Message] = dataclasses.field(init=False, repr=False)
    header_fields: dict[str, _d.FieldDescriptor] = dataclasses.field(init=False, repr=False)  # HTTP header -> field
    response_field: str = dataclasses.field(init=False, repr=False)  # JSON name of response_body, or ""
    rest_names: dict[str, str] = dataclasses.field(init=False, repr=False)  # proto -> JSON names, for errors
    patch_mask: str | None = dataclasses.field(init=False, repr=False)  # the update_mask a PATCH body implies

    def __post_init__(self):
        set_once = functools.partial(object.__setattr__, self)
        set_once("request_class", message_factory.GetMessageClass(self.method.input_type))
        set_once("header_fields", header_fields(self.method.input_type))
        set_once("rest_names", rest_names(self.method.input_type))
        output = self.method.output_type
        set_once("response_field", output.fields_by_name[self.response_body].json_name if self.response_body else "")
        mask = update_mask_field(self.method.input_type)
        set_once("patch_mask", mask.name if mask is not None and self.http_method == "PATCH"
                 and self.body not in ("", "*") else None)

    @property
    def full_method(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"


def bindings_of(service: _d.ServiceDescriptor) -> list[Binding]:
    """Every HTTP binding (primary and additional) of the service's unary methods."""
    found = []
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            continue
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        rule = options.Extensions[annotations_pb2.http]
        for one in (rule, *rule.additional_bindings):
            kind = one.WhichOneof("pattern")
            if kind is None:
                continue
            verb, path = (one.custom.kind.upper(), one.custom.path) if kind == "custom" else (kind.upper(), getattr(one, kind))
            found.append(Binding(method, verb, parse(path), one.body, one.response_body))
    return found


# --- field paths ---------------------------------------------------------------------------------

def _field(message: _d.Descriptor, name: str) -> _d.FieldDescriptor | None:
    """A field by proto name or JSON name, as proto3 JSON accepts both."""
    return message.fields_by_name.get(name) or next((f for f in message.fields if f.json_name == name), None)


def resolve(message: _d.Descriptor, path: str) -> list[_d.FieldDescriptor]:
    """The chain of fields a dotted path names; BadRequest if any part names none."""
    chain: list[_d.FieldDescriptor] = []
    current: _d.Descriptor | None = message
    for part in path.split("."):
        field = _field(current, part) if current is not None else None
        if field is None:
            raise BadRequest(f"unknown field {path!r}", [(path, "no such field")])
        chain.append(field)
        current = field.message_type
    return chain


def _set(target: dict, chain: list[_d.FieldDescriptor], value) -> None:
    for field in chain[:-1]:
        target = target.setdefault(field.name, {})
        if not isinstance(target, dict):
            raise BadRequest(f"field {field.name!r} is not an object", [(field.name, "must be an object")])
    target[chain[-1].name] = value


def _query_value(chain: list[_d.FieldDescriptor], name: str, values: list[str]):
    field = chain[-1]
    is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
    if is_map or (field.message_type is not None and field.message_type.full_name not in _STRING_LIKE):
        raise BadRequest(f"query parameter {name!r} names a message field", [(name, "cannot be set from the query string")])
    if not field.is_repeated and len(values) > 1:
        raise BadRequest(f"query parameter {name!r} given more than once", [(name, "is not repeated")])
    if field.type == field.TYPE_BOOL:
        parsed = []
        for value in values:
            if value.lower() not in ("true", "false"):
                raise BadRequest(f"query parameter {name!r} must be true or false", [(name, "must be true or false")])
            parsed.append(value.lower() == "true")
        return parsed if field.is_repeated else parsed[0]
    if (field.type in _64_BIT or field.type in _INTEGERS) and not all(_CANONICAL_INTEGER.match(v) for v in values):
        raise BadRequest(f"query parameter {name!r} must be a whole number", [(name, "must be a whole number")])
    return values if field.is_repeated else values[0]


# --- request -------------------------------------------------------------------------------------

def _json_body(raw: bytes) -> object:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"malformed JSON body: {error}", [("body", "is not valid JSON")]) from None
    except RecursionError:  # [[[[...]]]] deeper than the parser goes
        raise BadRequest("JSON body nested too deeply", [("body", "is nested too deeply")]) from None


def header_fields(descriptor: _d.Descriptor) -> dict[str, _d.FieldDescriptor]:
    """Top-level fields the edge fills from an HTTP header: header name -> field."""
    return {f.GetOptions().Extensions[transcoding_pb2.from_header]: f for f in descriptor.fields
            if f.GetOptions().Extensions[transcoding_pb2.from_header]}


def build_request(binding: Binding, path_args: Mapping[str, str], query: Iterable[tuple[str, list[str]]],
                  raw_body: bytes, headers: Mapping[str, str] | Headers | None = None) -> Message:
    """The RPC request for an HTTP request, or BadRequest naming what does not fit."""
    descriptor = binding.method.input_type
    fields: dict = {}
    if binding.body == "*":
        body = _json_body(raw_body)
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object", [("body", "must be a JSON object")])
        _check_json(body, descriptor)
        fields = body
    elif binding.body:
        _set(fields, resolve(descriptor, binding.body), _json_body(raw_body))
        _check_json(fields, descriptor)
    elif raw_body.strip():
        raise BadRequest("this operation takes no request body", [("body", "must be empty")])

    bound = set()
    for arg, path in binding.template.variables.items():
        chain = resolve(descriptor, path)
        top = chain[0]
        for key in (top.name, top.json_name):
            if len(chain) == 1 and key in fields and str(fields[key]) != path_args[arg]:
                raise BadRequest(f"{path} in the body differs from the path", [(path, "differs from the path")])
        if len(chain) == 1:
            fields.pop(top.json_name, None)  # keep one spelling; the path's value wins (they agreed)
        _set(fields, chain, path_args[arg])
        bound.add(".".join(f.name for f in chain))

    for name, values in query:
        if binding.body == "*":
            raise BadRequest(f"unexpected query parameter {name!r}", [(name, "this operation takes its fields in the body")])
        chain = resolve(descriptor, name)
        canonical = ".".join(f.name for f in chain)
        if canonical == binding.patch_mask:
            raise BadRequest(f"unexpected query parameter {name!r}", [(name, "the fields in the body are the ones changed")])
        if canonical in bound or (binding.body and canonical.split(".")[0] == binding.body):
            raise BadRequest(f"query parameter {name!r} is already bound", [(name, "set by the path or body")])
        _set(fields, chain, _query_value(chain, name, values))
    for header, field in binding.header_fields.items():
        if field.name in fields or field.json_name in fields:
            raise BadRequest(f"{field.name} is set with the {header} header", [(field.name, f"use the {header} header")])
        if headers and header in headers:
            fields[field.name] = headers[header]
    message = binding.request_class()
    try:
        json_format.ParseDict(fields, message, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        where, problem = _violation(error, binding.method.input_type)
        raise BadRequest(f"{where}: {problem}", [(where, problem)]) from None
    if binding.patch_mask is not None:
        _mask_from_body(binding, fields, message)
    return message


def _mask_from_body(binding: Binding, fields: dict, message: Message) -> None:
    """A PATCH changes the fields its body holds (AIP-134's implied mask): the mask is the body's keys."""
    body = fields.get(binding.body)
    resource = binding.method.input_type.fields_by_name[binding.body].message_type
    if isinstance(body, dict) and resource is not None and binding.patch_mask is not None:
        paths = [resolve(resource, key)[0].name for key in body]
        getattr(message, binding.patch_mask).paths.extend(dict.fromkeys(paths))


_CANONICAL_INTEGER = re.compile(r"^(0|-?[1-9][0-9]*)\Z")
_INTEGERS = {_d.FieldDescriptor.TYPE_INT32, _d.FieldDescriptor.TYPE_SINT32, _d.FieldDescriptor.TYPE_SFIXED32,
             _d.FieldDescriptor.TYPE_UINT32, _d.FieldDescriptor.TYPE_FIXED32}


def _check_json(value, descriptor: _d.Descriptor | None, path: str = "") -> None:
    """Each body value has the JSON type the document gives its field, before proto3 JSON parsing
    (which is laxer: it takes null as "the default", "+5", "1_000" and non-ASCII digits as
    integers, and enum numbers for names). 64-bit integers may be strings of digits. A field the
    server sets (OUTPUT_ONLY, readOnly in the document) is refused rather than silently dropped."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, descriptor, f"{path}[{i}]")
        return
    if not isinstance(value, dict) or descriptor is None:
        return
    for key, item in value.items():
        field = _field(descriptor, key) if isinstance(key, str) else None
        if field is None:
            continue  # unknown names are the parser's to refuse
        where = f"{path}.{key}" if path else str(key)
        if field_behavior_pb2.OUTPUT_ONLY in behaviours(field):  # readOnly in the document
            raise BadRequest(f"{where}: is set by the server", [(where, "is set by the server, not by a request")])
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if field.is_repeated and not is_map and not isinstance(item, list):
            continue  # not a list: the parser says so
        items = [(f"{where}[{i}]", one) for i, one in enumerate(item)] if field.is_repeated and not is_map else [(where, item)]
        for at, one in items:
            if not _json_type_fits(field, one):
                raise BadRequest(f"{at}: {_expected(field)}", [(at, _expected(field))])
        if field.message_type is not None and not is_map and field.message_type.full_name not in _STRING_LIKE:
            _check_json(item, field.message_type, where)


def _json_type_fits(field: _d.FieldDescriptor, value) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return field.type == field.TYPE_BOOL
    if field.message_type is not None and field.message_type.full_name not in _WELL_KNOWN:
        return isinstance(value, dict)  # proto3 JSON's parser reads [] as an empty message
    if field.enum_type is not None:
        return isinstance(value, str)
    if field.type in _64_BIT and isinstance(value, str):
        return bool(_CANONICAL_INTEGER.match(value))
    if field.type in _64_BIT or field.type in _INTEGERS:
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if field.type == field.TYPE_STRING:
        return isinstance(value, str)
    return field.type != field.TYPE_BOOL


_SCALARS = {
    _d.FieldDescriptor.TYPE_BOOL: "must be true or false",
    _d.FieldDescriptor.TYPE_STRING: "must be a string",
    _d.FieldDescriptor.TYPE_BYTES: "must be base64-encoded bytes",
    _d.FieldDescriptor.TYPE_FLOAT: "must be a number",
    _d.FieldDescriptor.TYPE_DOUBLE: "must be a number",
}
_WELL_KNOWN = {
    "google.protobuf.Timestamp": "must be an RFC 3339 timestamp such as 2026-01-02T03:04:05Z",
    "google.protobuf.Duration": "must be a duration in seconds such as 1.5s",
    "google.protobuf.FieldMask": "must be a comma-separated list of field names",
}
_64_BIT = {_d.FieldDescriptor.TYPE_INT64, _d.FieldDescriptor.TYPE_UINT64, _d.FieldDescriptor.TYPE_SINT64,
           _d.FieldDescriptor.TYPE_FIXED64, _d.FieldDescriptor.TYPE_SFIXED64}


def _expected(field: _d.FieldDescriptor) -> str:
    """What a field's JSON value must be, in the client's terms."""
    if field.enum_type is not None:
        return "must be one of " + ", ".join(v.name for v in field.enum_type.values if v.number != 0)
    if field.message_type is not None:
        return _WELL_KNOWN.get(field.message_type.full_name, "must be an object")
    if field.type in _SCALARS:
        return _SCALARS[field.type]
    digits = "a JSON integer or a string of digits" if field.type in _64_BIT else "a JSON integer"
    return f"must be a whole number in range ({digits})"


def _violation(error: json_format.ParseError, message: _d.Descriptor) -> tuple[str, str]:
    """(field, problem) from a json_format error, in the client's terms: never the parser's own
    words, which name Python and protobuf internals."""
    text = str(error)
    unknown = re.search(r'has no field named "([^"]+)"', text)
    if unknown:
        return unknown.group(1), "unknown field"
    path = re.findall(r"Failed to parse (\w+) field", text)
    field: _d.FieldDescriptor | None = None
    current: _d.Descriptor | None = message
    for name in path:
        fields = {f.name: f for f in current.fields} | {f.json_name: f for f in current.fields} if current else {}
        field = fields.get(name)
        if field is None:
            break
        current = field.message_type
    if not path or field is None:
        return "body", "does not match the request schema"
    where = ".".join(path)
    if field.is_repeated and "must be in []" in text:
        return where, "must be a list"
    return where, _expected(field)


# --- response ------------------------------------------------------------------------------------

def response_json(binding: Binding, response: Message) -> object:
    """The HTTP body of a response: the whole message, or its `response_body` field, in proto3 JSON."""
    as_dict = json_format.MessageToDict(response, always_print_fields_with_no_presence=True)
    return as_dict.get(binding.response_field) if binding.response_field else as_dict
