"""Catalog rules: what a valid product is, and what a reservation of stock means.

Pure Python: no gRPC, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from services.common.clock import utcnow  # noqa: F401  (part of this domain's vocabulary)
from services.common.errors import DomainError, InvalidArgument, NotFound  # noqa: F401
from services.common.items import merge_quantities

AVAILABLE, ARCHIVED = "AVAILABLE", "ARCHIVED"
RESERVED, REJECTED, RELEASED, PENDING = "RESERVED", "REJECTED", "RELEASED", "PENDING"
PRODUCT_FIELDS = ("name", "description", "price")
MAX_STOCK = 1_000_000_000
MAX_PRICE_MINOR = 10**12
MAX_ITEMS, MAX_QUANTITY = 50, 1000
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class CatalogError(DomainError):
    reason = "CATALOG_ERROR"


class InsufficientStock(CatalogError):
    reason = "INSUFFICIENT_STOCK"


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




def product_problems(name: str, description: str, currency: str, price_minor: int, prefix: str = "product") -> list[tuple[str, str]]:
    problems = []
    if not name.strip() or len(name) > 120:
        problems.append((f"{prefix}.name", "is required, at most 120 characters"))
    if len(description) > 2000:
        problems.append((f"{prefix}.description", "must be at most 2000 characters"))
    if not _CURRENCY.match(currency):
        problems.append((f"{prefix}.price.currency_code", "must be an ISO 4217 code such as EUR"))
    if not 0 <= price_minor < MAX_PRICE_MINOR:
        problems.append((f"{prefix}.price.amount_minor", f"must be between 0 and {MAX_PRICE_MINOR - 1}"))
    return problems


def can_be_reserved(state: str) -> bool:
    """Only products on sale can be reserved; an archived product's stock stays where it is."""
    return state == AVAILABLE


def stock_problems(quantity: int, name: str = "quantity") -> list[tuple[str, str]]:
    return [] if 0 <= quantity <= MAX_STOCK else [(name, f"must be between 0 and {MAX_STOCK}")]


def normalise_items(items: list[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Validated items, merged by product and sorted (so every writer locks products in one order)."""
    return merge_quantities(items, max_items=MAX_ITEMS, max_quantity=MAX_QUANTITY)
