"""Errors as `application/problem+json` (RFC 9457), and the one table from gRPC status to HTTP.

No stack trace, upstream message of a server fault, or internal detail reaches a client:
for 5xx the detail is a fixed sentence, and the request id lets an operator find the logs.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import grpc
from flask import Response, g, json, request
from google.rpc import error_details_pb2

from runtime.errors import details_of

_LOGGER = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_SERVER_FAULT_DETAIL = {
    503: "a service this request needs is unavailable; retry later",
    504: "a service this request needs did not answer in time",
}


def problem(status: int, detail: str, *, code: str | None = None, reason: str | None = None,
            violations: list[tuple[str, str]] = (), headers: dict[str, str] | None = None, **extra) -> Response:
    """A problem+json response carrying the request id."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Client Closed Request" if status == 499 else "Error"
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": request.path, "request_id": getattr(g, "request_id", "")}
    if code:
        body["code"] = code
    if reason:
        body["reason"] = reason
    if violations:
        body["violations"] = [{"field": f, "description": d} for f, d in violations]
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON, headers=headers or {})


def from_rpc_error(error: grpc.RpcError) -> Response:
    """The HTTP answer to a failed upstream call, with BadRequest violations and Retry-After carried over."""
    code = error.code()
    status = HTTP_STATUS.get(code, 500)
    violations, reason, headers = [], None, {}
    for detail in details_of(error):
        if isinstance(detail, error_details_pb2.BadRequest):
            violations += [(v.field, v.description) for v in detail.field_violations]
        elif isinstance(detail, error_details_pb2.ErrorInfo):
            reason = detail.reason
        elif isinstance(detail, error_details_pb2.RetryInfo):
            headers["Retry-After"] = str(max(1, round(detail.retry_delay.ToTimedelta().total_seconds())))
    if status >= 500:
        _LOGGER.error("upstream failed: %s %s", code.name, error.details())
        message = _SERVER_FAULT_DETAIL.get(status, "the server could not complete this request")
        return problem(status, message, code=code.name, headers=headers)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="shop", error="invalid_token"'
    return problem(status, error.details() or HTTPStatus(status).phrase, code=code.name, reason=reason,
                   violations=violations, headers=headers)


def deadline_expired(_error) -> Response:
    """The request's own budget ran out before the edge could call a service (504, like a late answer)."""
    return problem(504, _SERVER_FAULT_DETAIL[504], code=grpc.StatusCode.DEADLINE_EXCEEDED.name)
