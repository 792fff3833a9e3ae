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


def new_order_id() -> str:
    """A time-based UUID (v1, random node): ids sort by creation time in Cassandra."""
    return str(uuid.uuid1(node=random.getrandbits(48) | 0x010000000000))


class OrderError(DomainError):
    reason = "ORDER_ERROR"


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
    """The request ran out of time before a service it needs answered."""

    timed_out = True


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


def fingerprint(lines: tuple[Line, ...]) -> str:
    """What "the same body" means for an idempotency key: the same products and quantities."""
    canonical = json.dumps([[line.product_id, line.quantity] for line in lines], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
