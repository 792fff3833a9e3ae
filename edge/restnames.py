"""Errors in the names a REST client uses.

Services speak proto: a violation names `items[0].product_id`, a mask error lists `display_name`.
A REST client sends proto3 JSON, where the same fields are `items[0].productId` and `displayName`
(FieldMask values too). The edge rewrites the proto names of a request's fields, wherever they
appear in an error it returns, to their JSON names, so every name a 400 mentions is one the
client can send back.

    names = rest_names(method.input_type)          # once per route, at start
    to_rest("profile.display_name: too long", names) -> "profile.displayName: too long"
"""

from __future__ import annotations

import re

from google.protobuf import descriptor as _d

_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_MAX_DEPTH = 8


def rest_names(message: _d.Descriptor) -> dict[str, str]:
    """Proto name -> JSON name of every field reachable from `message` whose two names differ."""
    names: dict[str, str] = {}
    seen: set[str] = set()

    def visit(descriptor: _d.Descriptor, depth: int) -> None:
        if descriptor.full_name in seen or depth > _MAX_DEPTH:
            return
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            if field.name != field.json_name:
                names.setdefault(field.name, field.json_name)
            if field.message_type is not None and not field.message_type.full_name.startswith("google.protobuf."):
                visit(field.message_type, depth + 1)

    visit(message, 0)
    return names


def to_rest(text: str, names: dict[str, str]) -> str:
    """`text` with every proto field name of `names` written as its JSON name."""
    if not names or "_" not in text:
        return text
    return _SNAKE.sub(lambda match: names.get(match.group(0), match.group(0)), text)
