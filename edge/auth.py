"""Bearer tokens at the edge: read from the request and verified before any gRPC call."""

from __future__ import annotations

from flask import request

from runtime.tokens import Claims, TokenVerifier, bearer_token


def verify_request(verifier: TokenVerifier) -> Claims:
    """The verified claims of the request's bearer token; TokenError if there is none or it is bad."""
    return verifier.verify(bearer_token(request.headers.get("Authorization")))
