"""Request bodies, read in one place: the REST routes' JSON and the OAuth2 forms alike.

    raw = read_body()       # the whole body, as bytes
    form = read_form()      # an application/x-www-form-urlencoded body, every name with all its values

A body is read whole or refused, never cut short and acted on. One larger than the edge's limit
(EDGE_MAX_BODY_BYTES, whether its Content-Length says so or it is sent chunked and keeps coming) is
BodyTooLarge: 413 problem+json from every endpoint (edge/app.py), as the OpenAPI document says. A
chunked body whose framing does not parse (a chunk size that is not hex, a bad chunk extension), one
that ends early, and a form that is not one are MalformedBody: 400 in the endpoint's own error style
(problem+json, the OAuth2 error body, the sign-in error page).

Nothing in the edge reads Flask's request.form or request.get_data: werkzeug stops reading a chunked
body at the limit and parses what it has, and the WSGI server's framing errors would escape from it
as a 500 with a stack trace.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import current_app, request
from gunicorn.http.errors import ParseException
from werkzeug.datastructures import MultiDict

FORM = "application/x-www-form-urlencoded"
_STEP = 64 * 1024  # read this much at a time
# What reading wsgi.input raises when the body's framing is wrong or it stops early: gunicorn's parse
# errors (InvalidChunkSize, InvalidChunkExtension, ChunkMissingTerminator, ...) and OSError (gunicorn's
# NoMoreData, a socket timeout, werkzeug's development server's "Invalid chunk header").
_UNREADABLE = (ParseException, OSError)


class BodyRefused(Exception):
    """The request's body cannot be used; `status` is the HTTP answer, str() says why in the client's terms."""

    status = 400


class BodyTooLarge(BodyRefused):
    status = 413


class MalformedBody(BodyRefused):
    status = 400


def read_body(limit: int | None = None) -> bytes:
    """The whole request body (at most `limit` bytes, by default the app's MAX_CONTENT_LENGTH);
    BodyTooLarge or MalformedBody if it cannot be had."""
    limit = current_app.config["MAX_CONTENT_LENGTH"] if limit is None else limit
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"the request body is larger than {limit} bytes")
    if declared is None and not request.environ.get("wsgi.input_terminated"):
        return b""  # neither a length nor a server that ends chunked input: WSGI says there is no body
    # A chunked body is read one byte past the limit, to tell "exactly the limit" from "more".
    wanted = declared if declared is not None else limit + 1
    try:
        body = _read(request.environ["wsgi.input"], wanted)
    except _UNREADABLE:
        raise MalformedBody("the request body's framing is not valid HTTP/1.1, or the body ended early") from None
    if len(body) > limit:
        raise BodyTooLarge(f"the request body is larger than {limit} bytes")
    if declared is not None and len(body) < declared:
        raise MalformedBody("the request body is shorter than its Content-Length")
    return body


def _read(stream, wanted: int) -> bytes:
    """Up to `wanted` bytes of the stream; never asks for more (a raw socket would wait for them)."""
    chunks, size = [], 0
    while size < wanted:
        chunk = stream.read(min(_STEP, wanted - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_form(limit: int | None = None) -> MultiDict[str, str]:
    """The fields of an application/x-www-form-urlencoded body in order; BodyTooLarge or MalformedBody.

    Strictly parsed: every field is name=value (the value may be empty), percent-encoded UTF-8."""
    if (request.mimetype or "") != FORM:
        raise MalformedBody(f"Content-Type must be {FORM}")
    raw = read_body(limit)
    try:
        fields = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True, errors="strict")
    except ValueError:  # also UnicodeDecodeError: a raw non-ASCII byte, or invalid UTF-8 once decoded
        raise MalformedBody(f"the request body is not valid {FORM}") from None
    return MultiDict(fields)
