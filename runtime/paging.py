"""Opaque page tokens, the same format for every store: base64url of {"after": "<last id>"}."""

from __future__ import annotations

import base64
import json
import uuid


class InvalidPageToken(ValueError):
    """A page token that this service did not hand out (or that was tampered with)."""


def encode_page_token(after_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after_id}).encode()).decode().rstrip("=")


def decode_page_token(token: str) -> str:
    """The id a page token points after; InvalidPageToken for anything not issued here."""
    try:
        padded = token + "=" * (-len(token) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))["after"]
        return str(uuid.UUID(after))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeError, RecursionError):
        raise InvalidPageToken(token) from None
