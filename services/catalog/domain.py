"""Catalog rules: what a valid product is, and what a reservation of stock means.

Pure Python: no gRPC, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.common.clock import utcnow  # noqa: F401  (part of this domain's vocabulary)
from services.common.errors import DomainError, InvalidArgument, NotFound  # noqa: F401
from services.common.items import merge_quantities

AVAILABLE, ARCHIVED = "AVAILABLE", "ARCHIVED"
RESERVED, REJECTED, RELEASED, PENDING = "RESERVED", "REJECTED", "RELEASED", "PENDING"
# What a caller sets on a product, at creation and by an update's mask. The price is one field to a
# caller (currency and amount, replaced whole) and two to the domain (currency, price_minor).
PRODUCT_FIELDS = ("name", "description", "price")


class CatalogError(DomainError):
    """Base of the catalog domain errors; the servicer maps each kind to a gRPC status."""

    reason = "CATALOG_ERROR"


class InsufficientStock(CatalogError):
    """An adjustment would leave fewer than zero units."""

    reason = "INSUFFICIENT_STOCK"


class StockLimitExceeded(CatalogError):
    """An adjustment would leave more units than a product may hold (the bound SetStock declares)."""

    reason = "STOCK_LIMIT_EXCEEDED"


def check_adjustment(current: int, delta: int, most: int) -> int:
    """The stock after adding `delta` to `current`: never below zero (InsufficientStock), never above
    `most` (StockLimitExceeded). Every store adapter applies it inside its atomic step."""
    result = current + delta
    if result < 0:
        raise InsufficientStock(f"only {current} in stock", [("delta", "would make stock negative")])
    if result > most:
        raise StockLimitExceeded(f"{current} in stock; adding {delta} would exceed the limit of {most}",
                                 [("delta", f"would make stock exceed {most}")])
    return result


class ReservationConflict(CatalogError):
    """A reservation id came back with other items: a caller bug, not a retry."""

    reason = "RESERVATION_ID_REUSED"


class Contended(CatalogError):
    """Too many concurrent writers on one product; safe to retry."""

    reason = "CONTENDED"


@dataclass
class Product:
    id: str
    name: str
    description: str
    currency: str
    price_minor: int
    created_at: datetime
    updated_at: datetime
    state: str = AVAILABLE
    stock: int = 0


@dataclass(frozen=True)
class Reservation:
    reservation_id: str
    status: str
    items: tuple[tuple[str, int], ...]
    short_product_ids: tuple[str, ...] = field(default_factory=tuple)


def can_be_reserved(state: str) -> bool:
    """Only products on sale can be reserved; an archived product's stock stays where it is."""
    return state == AVAILABLE


def normalise_items(items: list[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Items merged by product and sorted (so every writer locks products in one order)."""
    return merge_quantities(items)
