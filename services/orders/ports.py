"""What placing an order needs from the services around it, as two small interfaces (ports).

The use cases in service.py talk only to these; server.py plugs in the gRPC adapters
(gateways.py), and the unit tests plug in in-memory fakes. Every method takes the request's
CallContext (deadline, user token, request id) and passes it on untouched.

Every method raises, instead of answering:
- DependencyFailed   the service did not answer (unavailable, out of time): safe to compensate
- Forbidden          the service refused this caller's token
- Rejected           the service refused the request itself
"""

from __future__ import annotations

import abc

from runtime.calls import CallContext
from services.orders.domain import Line, Priced


class AccountsPort(abc.ABC):
    @abc.abstractmethod
    def account_is_active(self, user_id: str, call: CallContext) -> bool:
        """False when the account does not exist or is deactivated."""


class CatalogPort(abc.ABC):
    @abc.abstractmethod
    def price_many(self, product_ids: list[str], call: CallContext) -> dict[str, Priced]:
        """The price and availability of each product, by id, in one call; an id that names no
        product is left out."""

    @abc.abstractmethod
    def reserve(self, order_id: str, lines: tuple[Line, ...], call: CallContext) -> tuple[bool, list[str]]:
        """Holds stock for every line or for none, once per order id: (reserved, short product ids).
        Rejected("ORDER_CANCELLED") when the order's reservation was released before it arrived."""

    @abc.abstractmethod
    def release(self, order_id: str, call: CallContext) -> None:
        """Gives back what the order holds; harmless to repeat, and for an order that holds nothing."""
