"""google.api.http path templates -> Werkzeug URL rules.

    /v1/shelves/{id}                     -> /v1/shelves/<seg:id>
    /v1/{name=shelves/*/books/*}         -> /v1/<tpl("shelves/[^/:]+/books/[^/:]+"):name>
    /v1/shelves/{id}:archive             -> /v1/shelves/<seg:id>:archive

Segments never match ':' so a custom verb is never swallowed by a variable.
Grammar (from google/api/http.proto):
    Template = "/" Segments [ Verb ] ; Segment = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ; Verb = ":" LITERAL ;
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from werkzeug.routing import BaseConverter

_SEGMENT = r"[^/:]+"
_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class SegmentConverter(BaseConverter):
    """One path segment, without ':' (reserved for custom verbs)."""

    regex = _SEGMENT


class TemplateConverter(BaseConverter):
    """A variable bound to a multi-segment pattern such as shelves/*/books/*."""

    part_isolating = False

    def __init__(self, url_map, pattern: str):
        super().__init__(url_map)
        self.regex = pattern


CONVERTERS = {"seg": SegmentConverter, "tpl": TemplateConverter}


@dataclass(frozen=True)
class PathTemplate:
    rule: str                    # the Werkzeug rule
    variables: dict[str, str]    # rule argument name -> request field path
    openapi_path: str            # the same path for the OpenAPI document ("/v1/shelves/{id}")


def _segment_regex(segments: str) -> str:
    parts = []
    for segment in segments.split("/"):
        parts.append(_SEGMENT if segment == "*" else ".+" if segment == "**" else re.escape(segment))
    return "/".join(parts)


def _split_verb(template: str) -> tuple[str, str]:
    """Splits "/a/{b}:verb" into ("/a/{b}", "verb"); a ':' inside braces is not a verb."""
    depth, cut = 0, -1
    for i, char in enumerate(template):
        depth += char == "{"
        depth -= char == "}"
        if char == ":" and depth == 0 and "/" not in template[i:]:
            cut = i
    return (template[:cut], template[cut + 1:]) if cut >= 0 else (template, "")


def parse(template: str) -> PathTemplate:
    """Parses a path template; ValueError names what is wrong with it."""
    if not template.startswith("/"):
        raise ValueError(f"path template {template!r} must start with '/'")
    path, verb = _split_verb(template)
    rule, openapi, variables = [], [], {}
    for i, token in enumerate(re.split(r"(\{[^}]*\})", path)):
        if not token:
            continue
        if token.startswith("{"):
            field, _, pattern = token[1:-1].partition("=")
            if not _FIELD_PATH.match(field):
                raise ValueError(f"bad field path {field!r} in {template!r}")
            name = field.replace(".", "__")
            variables[name] = field
            converter = f'tpl("{_segment_regex(pattern)}")' if pattern and pattern != "*" else "seg"
            rule.append(f"<{converter}:{name}>")
            openapi.append("{" + field + "}")
            continue
        wildcards: list[str] = []
        for segment in token.split("/"):
            if segment in ("*", "**"):
                name = f"_wildcard{i}_{len(wildcards)}"
                wildcards.append(f"<{'path' if segment == '**' else 'seg'}:{name}>")
            else:
                wildcards.append(segment)
        rule.append("/".join(wildcards))
        openapi.append(token)
    suffix = f":{verb}" if verb else ""
    return PathTemplate("".join(rule) + suffix, variables, "".join(openapi) + suffix)
