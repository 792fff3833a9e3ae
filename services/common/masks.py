"""Field masks on updates (AIP-134): which fields of a resource an update request changes, and the
resource with them changed.

    updated = apply_mask(product, {"name": "Mug", "price": {"currency": "EUR", "price_minor": 1250}},
                         ["price"], ("name", "description", "price"), "product", updated_at=now)

A value in `changes` is the new value of the dataclass field of the path's name; a message field
(price: currency and amount) is a mapping of the dataclass fields it sets, and is replaced whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from services.common.errors import InvalidArgument

Resource = TypeVar("Resource")


def fields_to_update(paths: list[str], allowed: Sequence[str], given: Mapping[str, object],
                     resource: str) -> list[str]:
    """The fields to change: the mask's paths, or, with no mask, every allowed field given a value.

    InvalidArgument for a path that is not an allowed field, or when nothing would change.
    """
    unknown = [path for path in paths if path not in allowed]
    if unknown:
        raise InvalidArgument([("update_mask", f"unknown field {path!r}; allowed: {', '.join(allowed)}")
                               for path in unknown])
    chosen = paths or [name for name in allowed if given.get(name)]
    if not chosen:
        raise InvalidArgument([(resource, "no field to update")])
    return chosen


def values_of(changes: Mapping[str, object], paths: Sequence[str], resource: str) -> dict[str, Any]:
    """The dataclass fields that `paths` set, with their values from `changes`.

    A message field is replaced whole: each of its parts must be given (a part that is None, or empty
    text, which proto3 cannot tell from absent, is missing), so a default never stands in for one.
    InvalidArgument names `<resource>.<path>` for a path without a value or with a part missing.
    """
    values: dict[str, Any] = {}
    for path in paths:
        value = changes.get(path)
        if isinstance(value, Mapping):
            missing = [part for part, given in value.items() if given is None or given == ""]
            if missing:
                raise InvalidArgument([(f"{resource}.{path}", f"is replaced whole: needs {', '.join(value)}")])
            values.update(value)
        elif value is None:
            raise InvalidArgument([(f"{resource}.{path}", "has no value")])
        else:
            values[path] = value
    return values


def apply_mask(resource: Resource, changes: Mapping[str, object], paths: list[str], allowed: Sequence[str],
               name: str, **also: Any) -> Resource:
    """The dataclass `resource` with the masked fields (or, with no mask, every allowed field given a
    value) set from `changes`, and the fields in `also` (such as updated_at). `name` is the resource's
    field in the request, for the violations (fields_to_update, values_of)."""
    paths = fields_to_update(paths, allowed, changes, name)
    return dataclasses.replace(resource, **values_of(changes, paths, name), **also)  # type: ignore[type-var]
