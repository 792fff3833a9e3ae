"""Identifiers: every entity id is a UUID; anything else is the caller's mistake, not "not found"."""

import uuid

from services.common.errors import InvalidArgument


def parse_uuid(value: str, field: str = "id") -> str:
    """The canonical form of a UUID, or InvalidArgument naming the field."""
    if not value:
        raise InvalidArgument([(field, "is required")])
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument([(field, "must be a UUID")]) from None
