"""One classification of failed gRPC calls: what a code means, and what the edge answers for it.

Every code but OK is listed in CODES, as one of four kinds of failure with its HTTP status:

- CLIENT_FAULT  the request as sent will not succeed (a bad field, no such thing, no permission, a
                throttle): the client is told why, and nobody retries it unchanged.
- RETRYABLE     the same request may succeed later (a conflict, a service restarting or too slow, a
                call abandoned on the way); a service calling another treats it as "no answer".
- OVERLOADED    a server had no room for the call: 503 with Retry-After, never a client error.
- SERVER_FAULT  a bug, lost data, a method that is not deployed: 5xx with a fixed sentence, logged.

RESOURCE_EXHAUSTED is the one code with two meanings. A service's own refusal (the sign-in throttle)
carries an ErrorInfo and is the client's to wait out (429); grpc's "Concurrent RPC limit exceeded"
(runtime/server.py's maximum_concurrent_rpcs) carries no details and is the server's overload.

The edge's problems (edge/problems.py), its OAuth and sign-in answers and the orders gateways read
this table; observability/rpc.py's server faults (a package below this one) are its 5xx codes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2

from runtime.errors import details_of


class Failure(enum.Enum):
    CLIENT_FAULT = "client_fault"
    RETRYABLE = "retryable"
    OVERLOADED = "overloaded"
    SERVER_FAULT = "server_fault"


@dataclass(frozen=True)
class Meaning:
    failure: Failure
    http_status: int

    @property
    def server_failed(self) -> bool:
        """Whether the server, not the caller, is why the call failed (an error span, a 5xx)."""
        return self.http_status >= 500


_C = grpc.StatusCode
CODES: dict[grpc.StatusCode, Meaning] = {
    _C.INVALID_ARGUMENT: Meaning(Failure.CLIENT_FAULT, 400),
    _C.OUT_OF_RANGE: Meaning(Failure.CLIENT_FAULT, 400),
    _C.UNAUTHENTICATED: Meaning(Failure.CLIENT_FAULT, 401),
    _C.PERMISSION_DENIED: Meaning(Failure.CLIENT_FAULT, 403),
    _C.NOT_FOUND: Meaning(Failure.CLIENT_FAULT, 404),
    _C.ALREADY_EXISTS: Meaning(Failure.CLIENT_FAULT, 409),
    _C.FAILED_PRECONDITION: Meaning(Failure.CLIENT_FAULT, 409),
    _C.RESOURCE_EXHAUSTED: Meaning(Failure.CLIENT_FAULT, 429),  # with an ErrorInfo; see overloaded()
    _C.ABORTED: Meaning(Failure.RETRYABLE, 409),
    _C.CANCELLED: Meaning(Failure.RETRYABLE, 499),  # nginx's and grpc-gateway's "client closed request"
    _C.UNAVAILABLE: Meaning(Failure.RETRYABLE, 503),
    _C.DEADLINE_EXCEEDED: Meaning(Failure.RETRYABLE, 504),
    _C.UNKNOWN: Meaning(Failure.SERVER_FAULT, 500),
    _C.INTERNAL: Meaning(Failure.SERVER_FAULT, 500),
    _C.DATA_LOSS: Meaning(Failure.SERVER_FAULT, 500),
    _C.UNIMPLEMENTED: Meaning(Failure.SERVER_FAULT, 501),
}
OVERLOAD = Meaning(Failure.OVERLOADED, 503)


def classify(error: grpc.RpcError) -> Meaning:
    """The meaning of a failed call (client side)."""
    code = error.code()
    if code == _C.RESOURCE_EXHAUSTED and not any(isinstance(d, error_details_pb2.ErrorInfo) for d in details_of(error)):
        return OVERLOAD
    return CODES.get(code, CODES[_C.UNKNOWN])

