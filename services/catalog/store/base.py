"""The catalog's repository port. Both adapters pass tests/contract/test_catalog_store.py.

Stock invariants every adapter keeps, under any number of concurrent callers and replicas:
stock never goes below zero; an adjustment never takes it above the caller's limit; a reservation
holds stock for all its items or for none; a reservation id has its effect once, however often
it is reserved or released. (A release gives back what was held whatever the limit: a refund is
never refused.)
"""

from __future__ import annotations

import abc

from services.catalog.domain import Product, Reservation


class CatalogStore(abc.ABC):
    @abc.abstractmethod
    def ping(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def create_product(self, product: Product) -> None:
        """Inserts a product with product.stock units."""

    @abc.abstractmethod
    def get_product(self, product_id: str) -> Product | None:
        """The product with its current stock."""

    def get_products(self, product_ids: list[str]) -> dict[str, Product]:
        """Those of the products that exist, with their current stock, by id. An adapter that can read
        them in one round trip does so; this reads them one by one."""
        found = {}
        for product_id in dict.fromkeys(product_ids):
            product = self.get_product(product_id)
            if product is not None:
                found[product_id] = product
        return found

    @abc.abstractmethod
    def save_product(self, product: Product) -> None:
        """Writes name, description, price, state and updated_at (never stock)."""

    @abc.abstractmethod
    def list_products(self, page_size: int, page_token: str | None, query: str = "") -> tuple[list[Product], str | None]:
        """A page of products in a stable order whose name or description contains `query`
        (case-insensitive), and the next page's opaque token. InvalidPageToken for a bad token."""

    @abc.abstractmethod
    def set_stock(self, product_id: str, quantity: int) -> int:
        """Sets the available stock; returns it. NotFound for an unknown product."""

    @abc.abstractmethod
    def adjust_stock(self, product_id: str, delta: int, most: int) -> int:
        """Adds delta in one atomic step; InsufficientStock if the result would be negative,
        StockLimitExceeded if above `most` (domain.check_adjustment); returns the new stock."""

    @abc.abstractmethod
    def reserve(self, reservation_id: str, items: tuple[tuple[str, int], ...]) -> Reservation:
        """Holds every item's quantity, or none (status REJECTED, naming the short products).
        Idempotent: the same id returns the first outcome. Unknown products are short."""

    @abc.abstractmethod
    def release(self, reservation_id: str) -> Reservation:
        """Gives held stock back (status RELEASED). Idempotent; an unknown id is recorded as
        released, so a reservation arriving after its release holds nothing."""
