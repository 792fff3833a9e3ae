"""Catalog use cases: the domain rules applied against the store."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from runtime.paging import InvalidPageToken
from runtime.validation import declared_max_of
from services.catalog import domain
from services.catalog.domain import ARCHIVED, NotFound, Product, Reservation
from services.catalog.store.base import CatalogStore
from services.common.ids import parse_uuid
from services.common.masks import apply_mask, fields_to_update, values_of
from services.common.paging import bad_page_token, page_size
from shop.catalog.v1 import catalog_pb2

# The most units a product may have: what SetStock may set (its quantity's declared bound in
# catalog.proto), which an adjustment's result must keep too.
STOCK_LIMIT = declared_max_of(catalog_pb2.SetStockRequest, "quantity")


class CatalogService:
    def __init__(self, store: CatalogStore, clock=domain.utcnow):
        self._store = store
        self._clock = clock

    # The fields' own rules (lengths, currency code, price and stock bounds, UUIDs) are declared in
    # catalog.proto and checked on every request before a method runs (runtime/validation.py).
    def create(self, *, stock: int = 0, **fields: Any) -> Product:
        """A new product with the domain's PRODUCT_FIELDS by name (the price as {"currency": ...,
        "price_minor": ...}, whole) and `stock` units."""
        unknown = sorted(set(fields) - set(domain.PRODUCT_FIELDS))
        if unknown:  # a keyword the caller misspelt, as Python would refuse it
            raise TypeError(f"create() got unexpected keyword arguments {unknown}")
        now = self._clock()
        product = Product(id=str(uuid.uuid4()), created_at=now, updated_at=now, stock=stock,
                          **values_of(fields, domain.PRODUCT_FIELDS, "product"))
        self._store.create_product(product)
        return product

    def get(self, product_id: str) -> Product:
        product = self._store.get_product(parse_uuid(product_id))
        if product is None:
            raise NotFound(f"product {product_id} does not exist")
        return product

    def batch_get(self, product_ids: list[str]) -> list[Product]:
        """Every product asked for, in the order asked; NotFound naming each id (`ids[i]`) that has none."""
        ids = [parse_uuid(product_id, f"ids[{i}]") for i, product_id in enumerate(product_ids)]
        found = self._store.get_products(ids)
        missing = [(f"ids[{i}]", "no such product") for i, product_id in enumerate(ids) if product_id not in found]
        if missing:
            raise NotFound(f"{len(missing)} of the {len(ids)} products asked for do not exist", missing)
        return [found[product_id] for product_id in ids]

    def update(self, product_id: str, changes: dict, paths: list[str]) -> Product:
        """Changes the masked fields (or, with no mask, every field given) of PRODUCT_FIELDS. A price
        is replaced whole: changes["price"] is {"currency": ..., "price_minor": ...}, None for a part
        not given, which is refused (services/common/masks.py)."""
        paths = fields_to_update(paths, domain.PRODUCT_FIELDS, changes, "product")  # a bad mask before a lookup
        updated = apply_mask(self.get(product_id), changes, paths, domain.PRODUCT_FIELDS, "product",
                             updated_at=self._clock())
        self._store.save_product(updated)
        return updated

    def archive(self, product_id: str) -> Product:
        product = self.get(product_id)
        if product.state != ARCHIVED:
            product = dataclasses.replace(product, state=ARCHIVED, updated_at=self._clock())
            self._store.save_product(product)
        return product

    def list_products(self, size: int, page_token: str, query: str) -> tuple[list[Product], str | None]:
        try:
            return self._store.list_products(page_size(size), page_token or None, query.strip())
        except InvalidPageToken:
            raise bad_page_token() from None

    def set_stock(self, product_id: str, quantity: int) -> Product:
        self._store.set_stock(parse_uuid(product_id), quantity)
        return self.get(product_id)

    def adjust_stock(self, product_id: str, delta: int) -> Product:
        """Adds delta; refused if the stock would go below zero or above STOCK_LIMIT."""
        self._store.adjust_stock(parse_uuid(product_id), delta, STOCK_LIMIT)
        return self.get(product_id)

    def reserve(self, reservation_id: str, items: list[tuple[str, int]]) -> Reservation:
        return self._store.reserve(parse_uuid(reservation_id, "reservation_id"), domain.normalise_items(items))

    def release(self, reservation_id: str) -> Reservation:
        return self._store.release(parse_uuid(reservation_id, "reservation_id"))

