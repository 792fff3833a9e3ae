"""Store positions for paging, the same format for every store: the last id of the page, as the 22
base64url characters of its 16 bytes. Clients never see a position bare: runtime/page_tokens.py
seals it to the query it belongs to."""

from __future__ import annotations

import base64
import binascii
import uuid


class InvalidPageToken(ValueError):
    """A page token that is not of the shape this service hands out, or not sealed by it."""


def encode_page_token(after_id: str) -> str:
    return base64.urlsafe_b64encode(uuid.UUID(after_id).bytes).decode().rstrip("=")


def decode_page_token(token: str) -> str:
    """The id a page token points after; InvalidPageToken for anything not of the issued shape."""
    try:
        raw = base64.urlsafe_b64decode((token + "==").encode("ascii"))
        if len(token) != 22 or len(raw) != 16 or encode_page_token(str(uuid.UUID(bytes=raw))) != token:
            raise ValueError(token)
        return str(uuid.UUID(bytes=raw))
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidPageToken(token) from None
