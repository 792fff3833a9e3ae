"""Page tokens as clients see them.

A store's position (runtime/paging.py) is never handed out bare: `PageTokenInterceptor` seals it,
on every method whose request has a `page_token` and whose response a `next_page_token`, with an
HMAC over the method, the caller's subject and the request's other fields. So a token works only for the query that produced it; one edited,
made up, or carried to another query or another user is refused (INVALID_ARGUMENT) before the
method runs. The protos declare the sealed shape (a pattern on each page_token field), so a token
of the wrong shape is refused before anything else.

The key is derived from the service's own TLS private key: every replica of a workload holds the
same one, no further secret has to be distributed, and a token stops working when the key is
rotated (a client starts again from the first page).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import grpc

from runtime import errors
from runtime.interceptors import current_claims
from runtime.paging import InvalidPageToken

_POSITION_BYTES = 16
_TAG_BYTES = 16
NOT_ISSUED_FOR_THIS_QUERY = "is not a nextPageToken issued for this query"


class PageTokenSeal:
    """Seals a position to the query it belongs to, and opens only what it sealed for that query."""

    def __init__(self, secret: bytes):
        self._key = hmac.new(secret, b"shop page tokens v1", hashlib.sha256).digest()  # not the secret itself

    def seal(self, position: str, binding: bytes) -> str:
        raw = base64.urlsafe_b64decode((position + "==").encode("ascii"))
        return base64.urlsafe_b64encode(raw + self._tag(raw, binding)).decode().rstrip("=")

    def open(self, token: str, binding: bytes) -> str:
        """The position inside `token`; InvalidPageToken unless this seal made it for `binding`."""
        try:
            raw = base64.urlsafe_b64decode((token + "=").encode("ascii"))
        except (ValueError, UnicodeError, binascii.Error):
            raise InvalidPageToken(token) from None
        position, tag = raw[:_POSITION_BYTES], raw[_POSITION_BYTES:]
        if len(raw) != _POSITION_BYTES + _TAG_BYTES or not hmac.compare_digest(tag, self._tag(position, binding)):
            raise InvalidPageToken(token)
        return base64.urlsafe_b64encode(position).decode().rstrip("=")

    def _tag(self, position: bytes, binding: bytes) -> bytes:
        return hmac.new(self._key, position + binding, hashlib.sha256).digest()[:_TAG_BYTES]


def query_binding(method: str, request) -> bytes:
    """What a token is valid for: the method, the caller, and every request field but the paging ones."""
    query = type(request)()
    query.CopyFrom(request)
    query.ClearField("page_token")
    if "page_size" in query.DESCRIPTOR.fields_by_name:
        query.ClearField("page_size")  # a client may ask for the next page in another size
    claims = current_claims()
    subject = claims.subject if claims is not None else ""
    return b"\0".join((method.encode(), subject.encode(), query.SerializeToString(deterministic=True)))


class PageTokenInterceptor(grpc.ServerInterceptor):
    """Opens the request's page token and seals the response's, for every paged unary method.
    Installed inside AuthorizationInterceptor, so the caller is known and the token's shape checked."""

    def __init__(self, seal: PageTokenSeal):
        self._seal = seal

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        body, method = handler.unary_unary, handler_call_details.method

        def unary_unary(request, context):
            if "page_token" not in request.DESCRIPTOR.fields_by_name:
                return body(request, context)
            binding = query_binding(method, request)
            if request.page_token:
                try:
                    request.page_token = self._seal.open(request.page_token, binding)
                except InvalidPageToken:
                    errors.abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"page_token: {NOT_ISSUED_FOR_THIS_QUERY}",
                                 violations=[("page_token", NOT_ISSUED_FOR_THIS_QUERY)], reason="INVALID_FIELDS",
                                 domain="validation")
            response = body(request, context)
            if getattr(response, "next_page_token", ""):
                response.next_page_token = self._seal.seal(response.next_page_token, binding)
            return response

        return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer, handler.response_serializer)
