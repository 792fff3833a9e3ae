"""Order rules: what an order is, its states, and what makes two requests "the same order".

Pure Python: no gRPC, no database.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime

from services.common.clock import utcnow  # noqa: F401  (part of this domain's vocabulary)
from services.common.errors import DomainError, InvalidArgument, NotFound  # noqa: F401
from services.common.items import merge_quantities

PENDING, CONFIRMED, CANCELLED, REJECTED = "PENDING", "CONFIRMED", "CANCELLED", "REJECTED"
# Why an order was CANCELLED (Order.reason) besides a refusal's own reason: the customer's own act,
# or the saga's compensation (a dependency timed out or failed), or the recovery pass.
CANCELLED_BY_USER, TIMED_OUT, DEPENDENCY_FAILED, INTERRUPTED = (
    "cancelled_by_user", "deadline_exceeded", "dependency_failed", "interrupted")


def new_order_id() -> str:
    """A time-based UUID (v1, random node): ids sort by creation time in Cassandra."""
    return str(uuid.uuid1(node=random.getrandbits(48) | 0x010000000000))


class OrderError(DomainError):
    reason = "ORDER_ERROR"
    retry_after: float | None = None  # seconds before a retry may succeed (google.rpc.RetryInfo); None: it will not


class IdempotencyConflict(OrderError):
    reason = "IDEMPOTENCY_KEY_REUSED"


class Rejected(OrderError):
    """The order cannot be placed as asked (out of stock, product unavailable, account inactive)."""

    def __init__(self, message: str, reason: str, violations: list[tuple[str, str]] | None = None):
        super().__init__(message, violations)
        self.reason = reason


class Forbidden(OrderError):
    """A service behind this one refused the caller's token (for example a missing scope)."""

    reason = "UPSTREAM_DENIED"


class DependencyFailed(OrderError):
    """A service this operation needs did not answer; what the operation held was given back."""

    reason = "DEPENDENCY_FAILED"
    retry_after = 1.0
    timed_out = False


class DependencyTimedOut(DependencyFailed):
    """The request ran out of time before a service it needs answered. Answered like any failed
    dependency (UNAVAILABLE, retry later): the saga stopped early enough to give back what it held
    and say so within the caller's deadline (OrdersService.place)."""

    timed_out = True


class StillBeingPlaced(OrderError):
    """A retry found the first request with its Idempotency-Key still placing the order, and ran out
    of time waiting for the outcome. Nothing was done for it; asked again, it answers the outcome."""

    reason = "IDEMPOTENCY_KEY_IN_USE"
    retry_after = 1.0

    def __init__(self):
        super().__init__("the first request with this Idempotency-Key is still being processed; retry")


class OutcomeUnknown(StillBeingPlaced):
    """This request's own placing could not learn whether its order was confirmed (the store stopped
    answering right after the confirmation was sent). Asked again with the same Idempotency-Key, the
    service answers the outcome; so this is always "ask again" (ABORTED, 409 with Retry-After), never
    an answer that would let the caller think nothing was placed."""


class StillBeingPlacedAtDeadline(StillBeingPlaced):
    """StillBeingPlaced, when what ran out was the caller's own deadline (too short to retry in)."""


@dataclass(frozen=True)
class Priced:
    """A product as the catalog prices it for an order."""

    name: str
    currency: str
    unit_price_minor: int
    available: bool


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int
    name: str = ""
    unit_price_minor: int = 0
    currency: str = ""


@dataclass
class Order:
    id: str
    user_id: str
    lines: tuple[Line, ...]
    status: str
    created_at: datetime
    updated_at: datetime
    reason: str = ""
    currency: str = ""
    total_minor: int = 0


def normalise_lines(items: list[tuple[str, int]]) -> tuple[Line, ...]:
    """Lines merged by product and sorted, so equal orders compare equal."""
    return tuple(Line(p, q) for p, q in merge_quantities(items))


def item_violations(items: list[tuple[str, int]], field: str, faults: dict[str, str]) -> list[tuple[str, str]]:
    """Violations `items[i].<field>` for each of the request's own items whose product is at fault
    (`faults`: product id -> what is wrong), in the request's order: lines are merged and sorted, so
    their positions are not the request's."""
    return [(f"items[{i}].{field}", faults[product_id]) for i, (raw_id, _) in enumerate(items)
            if (product_id := str(uuid.UUID(raw_id))) in faults]


def check_quantities(lines: tuple[Line, ...], most: int) -> None:
    """InvalidArgument if a product's merged quantity exceeds `most`, the bound one order line
    declares: listing a product twice does not buy past it."""
    over = [line.product_id for line in lines if line.quantity > most]
    if over:
        raise InvalidArgument([("items", f"product {product_id} is ordered more than {most} times in all")
                               for product_id in over])


def total_of(lines: tuple[Line, ...], most: int) -> int:
    """The priced lines' total in minor units; Rejected (TOTAL_TOO_LARGE) above `most`, the largest
    amount of money the contract declares, so no order carries a total it cannot state."""
    total = sum(line.unit_price_minor * line.quantity for line in lines)
    if total > most:
        raise Rejected(f"the order's total would exceed {most} in minor units", "TOTAL_TOO_LARGE")
    return total


def failed_on_the_way(order: Order) -> bool:
    """Whether the order was cancelled because placing it failed on the way (a dependency down or
    too slow, or the request interrupted), not on its merits or by the customer: nothing was placed,
    so a retry with its Idempotency-Key may place it."""
    return order.status == CANCELLED and order.reason in (TIMED_OUT, DEPENDENCY_FAILED, INTERRUPTED)


def answer_for(order: Order) -> Order:
    """What a request answers for an order that has reached its final state: a retry with the same
    Idempotency-Key, or the first request when someone else finished the order meanwhile.

    An idempotent retry answers what the first request answered (the recorded outcome), so:
    - CONFIRMED: the order. So is an order the customer cancelled (CANCELLED_BY_USER): it was
      placed, and the retry shows what became of it.
    - REJECTED: the same refusal.
    - CANCELLED by the saga's compensation or by the recovery pass: the error that ended it (a
      dependency that failed or timed out, a refusal), never the order as if it had been placed,
      since nothing is held for it. A retry that finds such an order places the order again
      (failed_on_the_way; OrdersService._key_outcome), so this answer is the request's own.
    """
    if order.status == CONFIRMED or (order.status == CANCELLED and order.reason == CANCELLED_BY_USER):
        return order
    error = _recorded_error(order)
    error.retry_after = None
    raise error


def _recorded_error(order: Order) -> OrderError:
    said = order.reason.replace("_", " ")
    if order.status == REJECTED:
        return Rejected(f"this order was rejected: {said}", order.reason.upper())
    cancelled = f"this order was cancelled ({said}); to order again, use a new Idempotency-Key"
    if order.reason == TIMED_OUT:
        return DependencyTimedOut(cancelled)
    if order.reason in (DEPENDENCY_FAILED, INTERRUPTED):
        return DependencyFailed(cancelled)
    if order.reason == Forbidden.reason.lower():
        return Forbidden(cancelled)
    return Rejected(cancelled, order.reason.upper())


def fingerprint(lines: tuple[Line, ...]) -> str:
    """What "the same body" means for an idempotency key: the same products and quantities."""
    canonical = json.dumps([[line.product_id, line.quantity] for line in lines], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
