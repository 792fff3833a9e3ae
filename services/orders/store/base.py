"""The orders repository port. Both adapters pass tests/contract/test_order_store.py.

"Unsettled" orders are those whose stock may still need fixing: PENDING ones (being placed,
or interrupted) and CANCELLED ones whose release has not been confirmed. The recovery pass
works through them; settle() takes an order off that list.
"""

from __future__ import annotations

import abc
from datetime import datetime

from services.orders.domain import Order

IDEMPOTENCY_TTL_SECONDS = 24 * 3600


class OrderStore(abc.ABC):
    @abc.abstractmethod
    def ping(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def claim_idempotency_key(self, user_id: str, key: str, order_id: str, fingerprint: str) -> tuple[str, str]:
        """Binds (user, key) to order_id unless already bound; returns the (order_id, fingerprint)
        that holds the key now, ours or the first caller's. Keys expire after a day."""

    @abc.abstractmethod
    def reclaim_idempotency_key(self, user_id: str, key: str, from_order_id: str, to_order_id: str) -> bool:
        """Moves (user, key) from from_order_id to to_order_id if it is still bound to from_order_id
        (compare-and-set), for another day; False if it is not."""

    @abc.abstractmethod
    def create_order(self, order: Order) -> None:
        """Inserts a new order and marks it unsettled. If the id exists, the stored order stays as it is."""

    @abc.abstractmethod
    def get_order(self, order_id: str) -> Order | None: ...

    @abc.abstractmethod
    def transition(self, order: Order, from_status: str) -> bool:
        """Writes order (status, reason, lines, totals, updated_at) only if the stored status is
        still from_status; False if another writer moved it first."""

    @abc.abstractmethod
    def mark_unsettled(self, order_id: str) -> None: ...

    @abc.abstractmethod
    def settle(self, order_id: str) -> None: ...

    @abc.abstractmethod
    def unsettled(self, created_before: datetime, limit: int = 100) -> list[Order]:
        """Unsettled orders created before the given time, at most `limit`, the longest unsettled first."""

    @abc.abstractmethod
    def list_user_orders(self, user_id: str, page_size: int, page_token: str | None) -> tuple[list[Order], str | None]:
        """The user's orders, newest first, and the next page's opaque token."""
