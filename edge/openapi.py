"""The OpenAPI 3.1 document and the /docs page, generated from the same descriptors as the routes.

Descriptions come from the protos' comments (edge/comments.py). Schemas follow the proto3 JSON mapping (lowerCamelCase names, int64 as a string of digits or a
number, enums by name, Timestamp as RFC 3339). Field behaviours become required/readOnly/writeOnly.
"""

from __future__ import annotations

import html
import pathlib
import re
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, abort, json, request, send_from_directory
from google.api import field_behavior_pb2
from google.protobuf import descriptor as _d

from edge.comments import comments
from edge.fixed_paths import fixed_paths
from edge.restnames import rest_names, to_rest
from edge.transcoding import Binding, header_fields
from runtime.policy import MethodPolicy
from runtime.validation import behaviours, rules_of

_F = _d.FieldDescriptor
_INTEGER_PATTERN = "^(0|-?[1-9][0-9]*)$"
_UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_SCALARS: dict[int, dict[str, Any]] = {
    _F.TYPE_DOUBLE: {"type": "number", "format": "double"}, _F.TYPE_FLOAT: {"type": "number", "format": "float"},
    _F.TYPE_INT32: {"type": "integer", "format": "int32"}, _F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _F.TYPE_SFIXED32: {"type": "integer", "format": "int32"}, _F.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    _F.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    # proto3 JSON writes 64-bit integers as strings and accepts them as strings or numbers.
    # (as a string: canonical decimal, no sign but '-', no leading zero).
    _F.TYPE_INT64: {"type": ["string", "integer"], "format": "int64", "pattern": _INTEGER_PATTERN},
    _F.TYPE_SINT64: {"type": ["string", "integer"], "format": "int64", "pattern": _INTEGER_PATTERN},
    _F.TYPE_SFIXED64: {"type": ["string", "integer"], "format": "int64", "pattern": _INTEGER_PATTERN},
    _F.TYPE_UINT64: {"type": ["string", "integer"], "format": "uint64", "pattern": "^(0|[1-9][0-9]*)$", "minimum": 0},
    _F.TYPE_FIXED64: {"type": ["string", "integer"], "format": "uint64", "pattern": "^(0|[1-9][0-9]*)$", "minimum": 0},
    _F.TYPE_BOOL: {"type": "boolean"}, _F.TYPE_STRING: {"type": "string"},
    _F.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.FieldMask": {"type": "string", "description": "comma-separated field paths"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
}
_PROBLEM = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"}, "request_id": {"type": "string"},
        "code": {"type": "string"}, "reason": {"type": "string"},
        "violations": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "description": {"type": "string"}}}},
    },
}
_ERRORS = {"400": "Bad request", "401": "Missing or invalid token", "403": "Not allowed", "404": "Not found",
           "409": "Conflict", "413": "Request body too large", "414": "Request line (path and query) too long",
           "415": "Unsupported media type", "431": "Request headers too large",
           "429": "Too many requests", "503": "Service unavailable", "504": "Service timed out"}


class Schemas:
    def __init__(self, scopes: Iterable[str] = ()):
        """`scopes`: the OAuth2 scopes the services declare, listed for a `declared_scope` field."""
        self.components: dict[str, dict] = {}
        self._scopes = sorted(scopes)

    def ref(self, message: _d.Descriptor) -> dict:
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if message.full_name not in self.components:
            self.components[message.full_name] = {}  # placeholder first: recursive messages terminate
            self.components[message.full_name] = self.message_schema(message)
        return {"$ref": f"#/components/schemas/{message.full_name}"}

    def field(self, field: _d.FieldDescriptor) -> dict:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.field(field.message_type.fields_by_name["value"])}
        if field.message_type is not None:
            single = self.ref(field.message_type)
        elif field.enum_type is not None:
            single = {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        else:
            single = {**_SCALARS[field.type], **_value_rules(field), **_example(field)}
            rules = rules_of(field)
            if rules is not None and rules.declared_scope and self._scopes:
                single["enum"] = self._scopes
        if not field.is_repeated:
            return single
        rules = rules_of(field)
        return {"type": "array", "items": single,
                **({"minItems": rules.min_items} if rules is not None and rules.min_items else
                   {"minItems": 1} if field_behavior_pb2.REQUIRED in behaviours(field) else {}),
                **({"maxItems": rules.max_items} if rules is not None and rules.max_items else {})}

    def message_schema(self, message: _d.Descriptor, omit: frozenset[str] = frozenset()) -> dict:
        properties, required = {}, []
        names = rest_names(message)
        for field in message.fields:
            if field.name in omit:
                continue
            schema = self.field(field)
            described = _description(field, names)
            if described:
                schema = {**schema, "description": described}
            declared = behaviours(field)
            if field_behavior_pb2.OUTPUT_ONLY in declared:
                schema = {**schema, "readOnly": True} if "$ref" not in schema else {"allOf": [schema], "readOnly": True}
            if field_behavior_pb2.INPUT_ONLY in declared:
                schema = {**schema, "writeOnly": True}
            if field_behavior_pb2.REQUIRED in declared:
                required.append(field.json_name)
            properties[field.json_name] = schema
        about = comments().get(message.full_name)
        return {"type": "object", **({"description": to_rest(about, names)} if about else {}),
                "properties": properties, "additionalProperties": False, **({"required": required} if required else {})}


def _value_rules(field: _d.FieldDescriptor) -> dict[str, Any]:
    """JSON Schema keywords for a scalar's `(validation.v1.rules)` and REQUIRED (runtime/validation.py
    enforces the same declarations)."""
    rules = rules_of(field)
    schema: dict[str, Any] = {}
    required_plain = field_behavior_pb2.REQUIRED in behaviours(field) and not field.has_presence and not field.is_repeated
    if field.type == _F.TYPE_STRING:
        if rules is not None and rules.uuid:
            return {"format": "uuid", "pattern": _UUID_PATTERN}
        min_len = rules.min_len if rules is not None else 0
        if required_plain and not min_len:
            min_len = 1  # a required string cannot be empty: "" is the unset value
        schema.update({"minLength": min_len} if min_len else {})
        schema.update({"maxLength": rules.max_len} if rules is not None and rules.max_len else {})
        if rules is not None and rules.pattern:
            schema["pattern"] = rules.pattern
            if rules.pattern_description:
                schema["x-pattern-description"] = rules.pattern_description
        return schema
    if required_plain:
        schema["not"] = {"enum": [0, "0"]}  # a required number cannot be 0: 0 is the unset value
    if rules is None or not (rules.HasField("min") or rules.HasField("max")):
        return schema
    low = rules.min if rules.HasField("min") else None
    high = rules.max if rules.HasField("max") else None
    schema.update({"minimum": low} if low is not None else {})
    schema.update({"maximum": high} if high is not None else {})
    if "string" in _SCALARS[field.type].get("type", ()) and low is not None and high is not None:
        schema["pattern"] = integer_range_pattern(low, high)  # the string form of a 64-bit integer
    return schema


def _example(field: _d.FieldDescriptor) -> dict[str, Any]:
    """The field's declared example (`rules.example`), typed as the JSON it stands for."""
    rules = rules_of(field)
    if rules is None or not rules.example:
        return {}
    return {"examples": [rules.example if field.type == _F.TYPE_STRING else int(rules.example)]}


def integer_range_pattern(low: int, high: int) -> str:
    """A regular expression for the canonical decimals from low to high (inclusive)."""
    parts = []
    if low < 0:
        parts += ["-" + p for p in _natural_range(max(1, -high), -low)]
    if high >= 0:
        parts += _natural_range(max(0, low), high)
    return "^(" + "|".join(parts) + ")$"


def _natural_range(low: int, high: int) -> list[str]:
    """Alternatives matching low..high (0 <= low <= high), without leading zeros."""
    parts = []
    for length in range(len(str(low)), len(str(high)) + 1):
        first = max(low, 10 ** (length - 1) if length > 1 else 0)
        last = min(high, 10 ** length - 1)
        if first <= last:
            parts += _same_length(str(first), str(last))
    return parts


def _same_length(low: str, high: str) -> list[str]:
    if low == high:
        return [low]
    tail = len(low) - 1
    if tail == 0 or (low[1:] == "0" * tail and high[1:] == "9" * tail):
        return [_digits(low[0], high[0]) + _any_digits(tail)]
    if low[0] == high[0]:
        return [low[0] + rest for rest in _same_length(low[1:], high[1:])]
    parts, first, last = [], int(low[0]), int(high[0])
    if low[1:] != "0" * tail:  # low's own first digit covers only part of its tail
        parts += [low[0] + rest for rest in _same_length(low[1:], "9" * tail)]
        first += 1
    if high[1:] != "9" * tail:
        last -= 1
    if first <= last:
        parts.append(_digits(str(first), str(last)) + _any_digits(tail))
    if high[1:] != "9" * tail:
        parts += [high[0] + rest for rest in _same_length("0" * tail, high[1:])]
    return parts


def _digits(first: str, last: str) -> str:
    return first if first == last else f"[{first}-{last}]"


def _any_digits(count: int) -> str:
    return "" if count == 0 else "[0-9]" if count == 1 else f"[0-9]{{{count}}}"


def _description(field: _d.FieldDescriptor, names: dict[str, str]) -> str:
    """A field's comment, and its enum values' comments, in the REST names."""
    parts = [comments().get(field.full_name, "")]
    if field.enum_type is not None:
        documented = ((v.name, comments().get(f"{field.enum_type.full_name}.{v.name}")) for v in field.enum_type.values)
        parts += [f"{name}: {text}" for name, text in documented if text]
    return to_rest(" ".join(p for p in parts if p), names)


def _query_parameters(schemas: Schemas, message: _d.Descriptor, bound: set[str], prefix: str = "", depth: int = 0) -> list[dict]:
    """Leaf fields not bound by path or body, as query parameters (dotted names for nested ones)."""
    params = []
    for field in message.fields:
        name = prefix + field.json_name
        if field.name in bound or name in bound:
            continue
        nested = field.message_type
        if nested is None or nested.full_name in _WELL_KNOWN:
            # REQUIRED binds only at the top: a nested field is required only when its message is sent.
            required = not prefix and field_behavior_pb2.REQUIRED in behaviours(field)
            params.append({"name": name, "in": "query", "required": required, "schema": schemas.field(field),
                           **({"explode": True} if field.is_repeated else {})})
        elif not field.is_repeated and depth < 2 and not nested.GetOptions().map_entry:
            params += _query_parameters(schemas, nested, set(), name + ".", depth + 1)
    return params


def _operation(schemas: Schemas, binding: Binding, policy: MethodPolicy, operation_id: str) -> dict:
    method = binding.method
    request = method.input_type
    path_params = [{"name": field, "in": "path", "required": True, "schema": _path_schema(schemas, request, field)}
                   for field in binding.template.variables.values()]
    bound = {v.split(".")[0] for v in binding.template.variables.values()}
    headers = header_fields(request)
    bound |= {f.name for f in headers.values()}
    path_params += [{"name": name, "in": "header", "required": False,
                     "schema": {key: value for key, value in schemas.field(field).items() if key != "description"}}
                    for name, field in headers.items()]
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [method.containing_service.full_name],
        "summary": method.name,
        **({"description": to_rest(comments()[method.full_name], rest_names(request))}
           if method.full_name in comments() else {}),
        "parameters": path_params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": _response_schema(schemas, binding)}}}},
        "security": [{"oauth2": sorted(policy.scopes)}] if policy.needs_token else [],
    }
    for status, text in _ERRORS.items():
        operation["responses"][status] = {"description": text, "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    if binding.body == "*":
        # Fields bound by the path are not part of the body.
        body_schema = schemas.message_schema(request, frozenset(bound)) if bound else schemas.ref(request)
        # A body that carries a required field cannot be left out (an absent body is an empty one).
        needed = any(field_behavior_pb2.REQUIRED in behaviours(f) for f in request.fields if f.name not in bound)
        operation["requestBody"] = {"required": needed, "content": {"application/json": {"schema": body_schema}}}
    elif binding.body:
        field = request.fields_by_name[binding.body]
        schema = schemas.field(field)
        needed = field_behavior_pb2.REQUIRED in behaviours(field)
        if binding.patch_mask is not None and field.message_type is not None:
            # A partial resource: the fields it holds are the ones changed (the edge makes them the
            # update mask), so none is required but at least one is given; a field that is given
            # follows its rules, and a nested message that is sent keeps its required fields.
            schema = {key: value for key, value in schemas.message_schema(field.message_type).items() if key != "required"}
            schema["minProperties"] = 1
            bound.add(binding.patch_mask)
        operation["requestBody"] = {"required": needed or binding.patch_mask is not None,
                                    "content": {"application/json": {"schema": schema}}}
        operation["parameters"] += _query_parameters(schemas, request, bound | {binding.body})
    else:
        operation["parameters"] += _query_parameters(schemas, request, bound)
    return operation


def _path_schema(schemas: Schemas, request: _d.Descriptor, path: str) -> dict:
    """A path variable's field schema; a variable takes one segment, so no '/' and no ':' (a custom verb)."""
    message: Any = request
    for part in path.split("."):
        field = message.fields_by_name[part]
        message = field.message_type
    declared = {key: value for key, value in schemas.field(field).items() if key != "description"}
    if declared.get("format") == "uuid":
        return declared  # a UUID's pattern already keeps to one segment
    return {"type": "string", "pattern": r"^[^/:]+$", **({"allOf": [declared]} if len(declared) > 1 else {})}


def _response_schema(schemas: Schemas, binding: Binding) -> dict:
    output = binding.method.output_type
    if binding.response_body:
        return schemas.field(output.fields_by_name[binding.response_body])
    return schemas.ref(output)


def _add_links(paths: dict[str, dict], bindings: list[Binding]) -> None:
    """OpenAPI links from an operation that answers with resources to the operations on one of
    them (AIP-122 paths): a resource's `id` fills the `{id}` of `<collection>/{id}` and
    `<collection>/{id}:<verb>`, where the collection is the answering operation's own path. Clients
    and fuzzers follow them (create a product, then read, change and archive that product)."""
    for binding in bindings:
        if binding.response_body or binding.template.variables:
            continue
        collection = binding.template.openapi_path
        output = binding.method.output_type
        found = [("", output)] if "id" in output.fields_by_name else [
            (f"/{f.json_name}/0", f.message_type) for f in output.fields
            if f.is_repeated and f.message_type is not None and "id" in f.message_type.fields_by_name]
        links = {}
        for pointer, _resource in found[:1]:
            for path, operations in paths.items():
                if path != f"{collection}/{{id}}" and not path.startswith(f"{collection}/{{id}}:"):
                    continue
                for target in operations.values():
                    links[target["operationId"]] = {"operationId": target["operationId"],
                                                    "parameters": {"id": f"$response.body#{pointer}/id"}}
        if links:
            paths[collection][binding.http_method.lower()]["responses"]["200"]["links"] = links


def document(routes: list[tuple[Binding, MethodPolicy]], scopes: dict[str, str], title: str = "API",
             authorization_code: bool = False, extra_paths: dict[str, dict] | None = None, server: str = "") -> dict:
    """The OpenAPI 3.1 document for the given routes."""
    schemas = Schemas(scopes)
    paths: dict[str, dict] = {}
    used: set[str] = set()
    for binding, policy in routes:
        base = f"{binding.method.containing_service.name}_{binding.method.name}"
        operation_id = next(f"{base}{n or ''}" for n in range(len(routes) + 1) if f"{base}{n or ''}" not in used)
        used.add(operation_id)
        paths.setdefault(binding.template.openapi_path, {})[binding.http_method.lower()] = _operation(
            schemas, binding, policy, operation_id)
    _add_links(paths, [binding for binding, _ in routes])
    components = {name: schemas.components[name] for name in sorted(schemas.components)}
    components["Problem"] = _PROBLEM
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "v1",
                 "description": "Generated from the gRPC service descriptors and their google.api.http annotations."},
        # The edge's public address is the tokens' issuer (the RFC 8414 metadata is built on it too).
        **({"servers": [{"url": server, "description": "this edge"}]} if server else {}),
        "paths": dict(sorted({**paths, **(extra_paths or {})}.items())),
        "components": {
            "schemas": components,
            # The legacy password grant is left out: it is off unless a dev setting enables it.
            "securitySchemes": {"oauth2": {"type": "oauth2", "flows": {
                **({"authorizationCode": {"authorizationUrl": "/oauth2/authorize", "tokenUrl": "/oauth2/token",
                                          "refreshUrl": "/oauth2/token", "scopes": dict(sorted(scopes.items()))}}
                   if authorization_code else {}),
                "clientCredentials": {"tokenUrl": "/oauth2/token", "scopes": dict(sorted(scopes.items()))},
            }}},
        },
    }


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
</body></html>"""
# The files of Swagger UI's package that the page above loads, and no other: the package also holds
# source maps, an OAuth2 redirect page, the editor and more, none of which the edge means to publish.
DOCS_ASSETS = frozenset(re.findall(r'"/docs/assets/([^"]+)"', _DOCS_PAGE))
_DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"});"""


def _assets_dir() -> pathlib.Path:
    import swagger_ui  # swagger-ui-py ships Swagger UI's files, so /docs needs no CDN

    return pathlib.Path(swagger_ui.__file__).parent / "static"


# Swagger UI runs only its own scripts from this origin; React sets inline styles, hence 'unsafe-inline' for styles.
DOCS_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def blueprint(routes, scopes, config) -> Blueprint:
    bp = Blueprint("openapi", __name__)
    body = json.dumps(document(routes, scopes, config.api_title, authorization_code=bool(config.authorize_method),
                               extra_paths=fixed_paths(token=bool(config.token_method), revoke=bool(config.revoke_method),
                                                       authorize=bool(config.authorize_method)),
                               server=config.verifier.issuer.rstrip("/")))
    page = _DOCS_PAGE.replace("{title}", html.escape(config.api_title))

    @bp.after_request
    def docs_policy(response):
        if request.path.startswith("/docs"):
            response.headers["Content-Security-Policy"] = DOCS_POLICY
        return response

    @bp.get("/openapi.json")
    def openapi_json():
        return Response(body, mimetype="application/json", headers={"Cache-Control": "max-age=60"})

    @bp.get("/docs")
    def docs():
        return Response(page, mimetype="text/html")

    @bp.get("/docs/init.js")
    def docs_init():
        return Response(_DOCS_INIT, mimetype="text/javascript")

    @bp.get("/docs/assets/<name>")
    def docs_assets(name):
        if name not in DOCS_ASSETS:
            abort(404)
        return send_from_directory(_assets_dir(), name, max_age=3600)

    return bp
