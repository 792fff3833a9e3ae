"""Bearer tokens at the edge: verified before any gRPC call, answered per RFC 6750."""

from __future__ import annotations

from flask import Response, request

from edge.problems import problem
from runtime.access import AccessDenied
from runtime.tokens import Claims, TokenError, TokenVerifier, bearer_token

REALM = "shop"


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "'")


def challenge(error: str | None = None, description: str = "", scope: str = "") -> str:
    """A `WWW-Authenticate: Bearer` value with RFC 6750 error attributes."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{_quoted(description)}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)


def verify_request(verifier: TokenVerifier) -> Claims:
    """The verified claims of the request's bearer token; TokenError if there is none or it is bad."""
    return verifier.verify(bearer_token(request.headers.get("Authorization")))


def unauthorized(error: TokenError) -> Response:
    return problem(401, error.description, reason="INVALID_TOKEN" if error.error else "MISSING_TOKEN",
                   headers={"WWW-Authenticate": challenge(error.error, error.description if error.error else "")})


def forbidden(denied: AccessDenied) -> Response:
    scope = " ".join(sorted(denied.missing_scopes))
    return problem(403, str(denied), reason=denied.reason,
                   headers={"WWW-Authenticate": challenge("insufficient_scope", str(denied), scope)})
