"""Rich gRPC errors: a status code plus `google.rpc` details a client can act on.

Each service keeps one table from its domain exceptions to status codes and wraps its
servicer methods with `translate_errors(table)`. A domain exception may carry:

- `violations`: [(field, description), ...]  -> google.rpc.BadRequest
- `reason`: a stable UPPER_SNAKE reason       -> google.rpc.ErrorInfo
- `retry_after`: seconds                      -> google.rpc.RetryInfo
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from runtime.stores import StoreUnavailable

_LOGGER = logging.getLogger(__name__)


def rich_status(
    code: grpc.StatusCode,
    message: str,
    *,
    violations: Iterable[tuple[str, str]] = (),
    reason: str | None = None,
    domain: str = "",
    metadata: Mapping[str, str] | None = None,
    retry_after: float | None = None,
) -> grpc.Status:
    """Builds a status whose details carry BadRequest, ErrorInfo and RetryInfo as given."""
    details = []
    violations = list(violations)
    if violations:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
        ]))
    if reason:
        details.append(error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=dict(metadata or {})))
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(int(retry_after * 1000))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed)
    return rpc_status.to_status(status)


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str, **details) -> NoReturn:
    """Ends the RPC with a rich status (raises, as context.abort does). The call's span records the
    code (observability/rpc.py reads it back from the context)."""
    context.abort_with_status(rich_status(code, message, **details))


def details_of(error: grpc.RpcError) -> list:
    """Unpacks the google.rpc details of a failed call (client side); [] when there are none."""
    status = rpc_status.from_call(error)
    if status is None:
        return []
    unpacked = []
    for any_detail in status.details:
        for kind in (error_details_pb2.BadRequest, error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo):
            if any_detail.Is(kind.DESCRIPTOR):
                detail = kind()
                any_detail.Unpack(detail)
                unpacked.append(detail)
    return unpacked


def translate_errors(table: Mapping[type[Exception], grpc.StatusCode], domain: str) -> Callable:
    """Decorator for servicer methods: domain exceptions in `table` become rich statuses.

    The first matching entry wins, so list subclasses before their bases. A store that does
    not answer (StoreUnavailable, which every adapter raises for its driver's outages) is
    UNAVAILABLE with RetryInfo. Anything else is a bug: it is logged with its traceback and the
    client sees INTERNAL with a fixed message, never the exception's text.
    """

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self, request, context):
            try:
                return method(self, request, context)
            except tuple(table) as error:
                code = next(code for kind, code in table.items() if isinstance(error, kind))
                abort(
                    context, code, str(error),
                    violations=getattr(error, "violations", ()),
                    reason=getattr(error, "reason", None),
                    domain=domain,
                    retry_after=getattr(error, "retry_after", None),
                )
            except StoreUnavailable as outage:
                _LOGGER.warning("%s: store unavailable: %s", method.__name__, outage)
                abort(context, grpc.StatusCode.UNAVAILABLE, "the service's store is unavailable; retry later",
                      reason="STORE_UNAVAILABLE", domain=domain, retry_after=1.0)
            except Exception:
                if _aborted(context):
                    raise  # the method ended the call itself with a status: keep it
                _LOGGER.exception("%s failed", method.__name__)
                abort(context, grpc.StatusCode.INTERNAL, "internal error", domain=domain)
        return wrapper

    return decorate


def _aborted(context: grpc.ServicerContext) -> bool:
    """Whether context.abort() already set a status (it raises a bare Exception to end the method)."""
    code = context.code()  # type: ignore[attr-defined]  # grpc has it since 1.38; types-grpcio lacks it
    return code is not None and code != grpc.StatusCode.OK
