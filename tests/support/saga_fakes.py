"""In-memory stand-ins for the order saga's ports (services/orders/ports.py), for unit tests.

They keep the ports' promises (all or nothing, once per order id, release is harmless to repeat)
with a dict of stock, and can be told to stop answering, as a real service can.
"""

from __future__ import annotations

import uuid

from runtime.calls import CallContext
from services.orders.domain import DependencyFailed, Line, Priced, Rejected
from services.orders.ports import AccountsPort, CatalogPort


class FakeAccounts(AccountsPort):
    def __init__(self, *active: str):
        self.active = set(active)
        self.down = False

    def account_is_active(self, user_id: str, call: CallContext) -> bool:
        call.time_left()
        if self.down:
            raise DependencyFailed("accounts is down")
        return user_id in self.active


class FakeCatalog(CatalogPort):
    """Products with stock; `down` makes every call fail, `release_down` only releases."""

    def __init__(self):
        self.products: dict[str, Priced] = {}
        self.stock: dict[str, int] = {}
        self.holds: dict[str, dict[str, int]] = {}  # order id -> product id -> units
        self.released: set[str] = set()
        self.down = False
        self.release_down = False
        self.reserve_calls = 0
        self.release_calls: list[CallContext] = []
        self.slow_price_seconds = 0.0
        self.price_calls = 0  # calls to price_many

    def add(self, product_id: str, stock: int, price: int = 1500, currency: str = "EUR", available: bool = True):
        self.products[product_id] = Priced(f"product {product_id[:4]}", currency, price, available)
        self.stock[product_id] = stock

    def _answer(self, call: CallContext) -> None:
        call.time_left()  # a real call could not start without time left either
        self.last_call = call
        if self.down:
            raise DependencyFailed("catalog is down")

    def price_many(self, product_ids: list[str], call: CallContext) -> dict[str, Priced]:
        self._answer(call)
        self.price_calls += 1
        if self.slow_price_seconds:
            import time

            time.sleep(self.slow_price_seconds)
        return {product_id: self.products[product_id] for product_id in product_ids if product_id in self.products}

    def reserve(self, order_id: str, lines: tuple[Line, ...], call: CallContext) -> tuple[bool, list[str]]:
        self._answer(call)
        self.reserve_calls += 1
        if order_id in self.released:
            raise Rejected("this order was already cancelled", "ORDER_CANCELLED")
        if order_id in self.holds:
            return True, []
        short = [line.product_id for line in lines if self.stock.get(line.product_id, 0) < line.quantity]
        if short:
            return False, short
        for line in lines:
            self.stock[line.product_id] -= line.quantity
        self.holds[order_id] = {line.product_id: line.quantity for line in lines}
        return True, []

    def release(self, order_id: str, call: CallContext) -> None:
        self.release_calls.append(call)
        self._answer(call)
        if self.release_down:
            raise DependencyFailed("catalog does not answer releases")
        for product_id, units in self.holds.pop(order_id, {}).items():
            self.stock[product_id] += units
        self.released.add(order_id)


def product(catalog: FakeCatalog, stock: int, **kwargs) -> str:
    """A new product in the fake catalog with `stock` units; its id."""
    product_id = str(uuid.uuid4())
    catalog.add(product_id, stock, **kwargs)
    return product_id


def call(seconds: float = 5.0) -> CallContext:
    """The context of a user's call with `seconds` left."""
    return CallContext.starting_now(seconds, token="user-token", request_id="req-1")
