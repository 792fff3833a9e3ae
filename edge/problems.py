"""Every error response the edge sends, built here and nowhere else.

- application/problem+json (RFC 9457) for the REST routes, with the HTTP status of the one failure
  classification (runtime/failures.py), field violations from google.rpc.BadRequest, and
  Retry-After from RetryInfo;
- OAuth2 error bodies (RFC 6749 section 5.2) for the token and revocation endpoints;
- `WWW-Authenticate` challenges (RFC 6750 Bearer, RFC 7617 Basic).

No stack trace, upstream message of a server fault, or internal detail reaches a client: for 5xx
the detail is a fixed sentence, and the request id lets an operator find the logs.
"""

from __future__ import annotations

import json as stdlib_json
import logging
from collections.abc import Sequence
from http import HTTPStatus

import grpc
from flask import Response, current_app, g, json, request
from google.rpc import error_details_pb2

from edge.restnames import to_rest
from runtime.access import AccessDenied
from runtime.errors import details_of
from runtime.failures import Failure, classify
from runtime.tokens import TokenError

_LOGGER = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"

_TITLES = {499: "Client Closed Request"}  # nginx's name, as grpc-gateway uses it; not in http.HTTPStatus
_SERVER_FAULT_DETAIL = {
    503: "a service this request needs is unavailable; retry later",
    504: "a service this request needs did not answer in time",
}
# Answers a client should simply retry; without a RetryInfo of the service's, retry after a second.
_RETRYABLE = {429, 503}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # OAuth answers (RFC 6749 section 5.1)
# RFC 6797, sent only over TLS: one year, this host only; a browser that reached the edge over HTTPS keeps using HTTPS.
HSTS = "max-age=31536000"
# An API answers with data, never with a page to render or frame; /docs sets a policy of its own.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _TITLES.get(status, "Error")


def problem(status: int, detail: str, *, code: str | None = None, reason: str | None = None,
            violations: Sequence[tuple[str, str]] = (), headers: dict[str, str] | None = None, **extra) -> Response:
    """A problem+json response carrying the request id; field names in the route's REST (JSON) form."""
    names = g.get("rest_names")
    if names:
        detail = to_rest(detail, names)
        violations = [(to_rest(f, names), to_rest(d, names)) for f, d in violations]
    body = {"type": "about:blank", "title": _title(status), "status": status, "detail": detail,
            "instance": request.path, "request_id": getattr(g, "request_id", "")}
    if code:
        body["code"] = code
    if reason:
        body["reason"] = reason
    if violations:
        body["violations"] = [{"field": f, "description": d} for f, d in violations]
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON, headers=headers or {})


def rpc_details(error: grpc.RpcError) -> tuple[list[tuple[str, str]], str | None, str | None]:
    """(violations, ErrorInfo reason, Retry-After seconds) carried by a failed call's google.rpc details."""
    violations, reason, retry_after = [], None, None
    for detail in details_of(error):
        if isinstance(detail, error_details_pb2.BadRequest):
            violations += [(v.field, v.description) for v in detail.field_violations]
        elif isinstance(detail, error_details_pb2.ErrorInfo):
            reason = detail.reason
        elif isinstance(detail, error_details_pb2.RetryInfo):
            retry_after = str(max(1, round(detail.retry_delay.ToTimedelta().total_seconds())))
    return violations, reason, retry_after


def from_rpc_error(error: grpc.RpcError) -> Response:
    """The HTTP answer to a failed upstream call, with BadRequest violations and Retry-After carried over."""
    code, meaning = error.code(), classify(error)
    status = meaning.http_status
    violations, reason, retry_after = rpc_details(error)
    headers = {}
    if retry_after or status in _RETRYABLE:
        headers["Retry-After"] = retry_after or "1"
    if meaning.failure is Failure.OVERLOADED:
        _LOGGER.warning("upstream overloaded: %s %s", code.name, error.details())
        return problem(status, _SERVER_FAULT_DETAIL[status], code=code.name, reason="OVERLOADED", headers=headers)
    if meaning.server_failed:
        _LOGGER.error("upstream failed: %s %s", code.name, error.details())
        message = _SERVER_FAULT_DETAIL.get(status, "the server could not complete this request")
        return problem(status, message, code=code.name, headers=headers)
    if status == 401:
        headers["WWW-Authenticate"] = challenge("invalid_token")
    return problem(status, error.details() or _title(status), code=code.name, reason=reason,
                   violations=violations, headers=headers)


_OVERLOADED_DETAIL = "the server is too busy to take this request now; retry later"
# The edge's own 503 body up to its instance, made once: a refusal must cost little (edge/admission.py).
_OVERLOADED_START = stdlib_json.dumps({"type": "about:blank", "title": _title(503), "status": 503,
                                       "detail": _OVERLOADED_DETAIL})[:-1]


def overloaded_body(path: str, request_id: str) -> bytes:
    """The body of the edge's own 503 (edge/admission.py): too busy to take this request now; retry
    shortly. Written by the worker before Flask runs, so made without a request context, in the same
    shape as problem()'s. `request_id` is one the edge accepted or made: letters, digits and ._:- only."""
    return (f'{_OVERLOADED_START}, "instance": {stdlib_json.dumps(path)}, "request_id": "{request_id}", '
            f'"reason": "OVERLOADED"}}').encode()


def deadline_expired(_error) -> Response:
    """The request's own budget ran out before the edge could call a service (504, like a late answer)."""
    return problem(504, _SERVER_FAULT_DETAIL[504], code=grpc.StatusCode.DEADLINE_EXCEEDED.name)


# --- bearer tokens (RFC 6750) ---------------------------------------------------------------------

def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "'")


def challenge(error: str | None = None, description: str = "", scope: str = "", scheme: str = "Bearer") -> str:
    """A `WWW-Authenticate` value for the configured realm, with RFC 6750 error attributes."""
    parts = [f'realm="{_quoted(current_app.config["REALM"])}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{_quoted(description)}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return f"{scheme} " + ", ".join(parts)


def unauthorized(error: TokenError) -> Response:
    return problem(401, error.description, reason="INVALID_TOKEN" if error.error else "MISSING_TOKEN",
                   headers={"WWW-Authenticate": challenge(error.error, error.description if error.error else "")})


def forbidden(denied: AccessDenied) -> Response:
    scope = " ".join(sorted(denied.missing_scopes))
    return problem(403, str(denied), reason=denied.reason,
                   headers={"WWW-Authenticate": challenge("insufficient_scope", str(denied), scope)})


# --- OAuth2 endpoints (RFC 6749 section 5.2) ------------------------------------------------------

_OAUTH_STATUS = {"invalid_client": 401}


def oauth_error(error: str, description: str | None, status: int | None = None, headers: dict | None = None) -> Response:
    """An RFC 6749 error body; invalid_client is a 401 with a Basic challenge (section 5.2)."""
    status = status or _OAUTH_STATUS.get(error, 400)
    all_headers = {**NO_STORE, **(headers or {})}
    if status == 401:
        all_headers["WWW-Authenticate"] = challenge(scheme="Basic")
    body = json.dumps({"error": error, "error_description": description})
    return Response(body, status=status, mimetype="application/json", headers=all_headers)


def oauth_error_from_rpc(error: grpc.RpcError) -> Response:
    """The authorization server's refusal as an OAuth2 error: its ErrorInfo reason is the error code."""
    _violations, reason, retry_after = rpc_details(error)
    reason = (reason or "").lower()
    code, meaning = error.code(), classify(error)
    if meaning.failure is Failure.CLIENT_FAULT and code == grpc.StatusCode.RESOURCE_EXHAUSTED:  # the sign-in throttle
        return oauth_error("invalid_grant", error.details(), 429, {"Retry-After": retry_after or "30"})
    if meaning.failure in (Failure.OVERLOADED, Failure.RETRYABLE):
        if meaning.failure is Failure.OVERLOADED:
            _LOGGER.warning("authorization server overloaded: %s %s", code.name, error.details())
        return oauth_error("temporarily_unavailable", "the authorization server is unavailable; retry later", 503,
                           {"Retry-After": retry_after or "1"})
    if meaning.failure is Failure.CLIENT_FAULT:
        return oauth_error(reason if reason.startswith(("invalid_", "unsupported_", "unauthorized_")) else "invalid_request",
                           error.details())
    _LOGGER.error("authorization server failed: %s %s", code.name, error.details())
    return oauth_error("server_error", "the authorization server could not complete the request", 500)
