"""Field masks on updates (AIP-134): which fields of a resource an update request changes."""

from collections.abc import Mapping

from services.common.errors import InvalidArgument


def fields_to_update(paths: list[str], allowed: tuple[str, ...], given: Mapping[str, object],
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
