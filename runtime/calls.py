"""The call context: what one incoming request hands to every call it makes on its behalf.

Built once where a request enters a process (the edge's view, a service's interceptor) and
passed, unchanged, to every outgoing call, as grpc-gateway's annotateContext does:

    call = CallContext.starting_now(10.0, token=claims.token, request_id=request_id)
    clients.call(method, request, call)              # timeout = call.time_left(), metadata = call.metadata()

The deadline has one form all the way: an instant on the monotonic clock. Plain Python on
purpose, so the use cases of a service may carry it through their ports without importing gRPC.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator
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

    def sooner(self, reserve: float, share: float = 0.2) -> CallContext:
        """The same call with `reserve` seconds (at most `share` of what is left) kept back: for
        steps that must leave time after them to give back what they took and still answer."""
        left = max(0.0, self.deadline - time.monotonic())
        return CallContext(self.deadline - min(reserve, left * share), self.token, self.request_id)

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


# The call this thread (or task) is serving: the interceptor sets it once per incoming call, and
# work done for the call that takes no CallContext argument (a store's statements) reads it.
_SERVING: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar("serving", default=None)


def served() -> CallContext | None:
    """The call being served here, or None outside one (start-up, a background pass)."""
    return _SERVING.get()


def serve(call: CallContext) -> None:
    """Marks `call` as the one being served from here on (the interceptor, once per call)."""
    _SERVING.set(call)


@contextlib.contextmanager
def serving(call: CallContext) -> Iterator[CallContext]:
    """Work inside the block is done for `call` (a sooner or detached form of the served call)."""
    reset = _SERVING.set(call)
    try:
        yield call
    finally:
        _SERVING.reset(reset)
