"""The call context: what one incoming request hands to every call it makes on its behalf.

Built once where a request enters a process (the edge's view, a service's interceptor) and
passed, unchanged, to every outgoing call, as grpc-gateway's annotateContext does:

    call = CallContext.starting_now(10.0, token=claims.token, request_id=request_id)
    clients.call(method, request, call)              # timeout = call.time_left(), metadata = call.metadata()

The deadline has one form all the way: an instant on the monotonic clock. Plain Python on
purpose, so the use cases of a service may carry it through their ports without importing gRPC.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Longest an outgoing call may wait, whatever the caller allowed: nobody waits forever on a peer.
MAX_CALL_SECONDS = 10.0
# Kept back from every outgoing call so the reply can still travel back within the caller's deadline.
_MARGIN_SECONDS = 0.05


class DeadlineExpired(Exception):
    """The request has no time left for another call."""


@dataclass(frozen=True)
class CallContext:
    """One deadline (time.monotonic() seconds), the end user's bearer token (never logged) and the request id."""

    deadline: float
    token: str | None = field(default=None, repr=False)
    request_id: str = ""

    @classmethod
    def starting_now(cls, budget: float, *, token: str | None = None, request_id: str = "") -> CallContext:
        """A context whose deadline is `budget` seconds from now, capped at MAX_CALL_SECONDS."""
        return cls(time.monotonic() + min(budget, MAX_CALL_SECONDS), token, request_id)

    def time_left(self) -> float:
        """Seconds an outgoing call may take; DeadlineExpired when nothing is left."""
        left = self.deadline - time.monotonic() - _MARGIN_SECONDS
        if left <= 0:
            raise DeadlineExpired("the request's deadline has passed")
        return left

    def detached(self, budget: float) -> CallContext:
        """The same caller with a budget of its own, for work that must finish even when the request
        has run out of time (releasing what a failed request held)."""
        return CallContext.starting_now(budget, token=self.token, request_id=self.request_id)

    def with_token(self, token: str | None) -> CallContext:
        return CallContext(self.deadline, token, self.request_id)

    def metadata(self) -> list[tuple[str, str]]:
        """gRPC metadata that carries the caller along (trace context is added by observability.rpc.client_span)."""
        metadata = []
        if self.token:
            metadata.append(("authorization", f"Bearer {self.token}"))
        if self.request_id:
            metadata.append(("x-request-id", self.request_id))
        return metadata
