"""Cassandra adapter of the orders store: tables shaped by the queries.

    orders              by order id (the source of truth; status changes are LWTs)
    orders_by_user      a user's orders, newest first (order ids are time-based UUIDs)
    idempotency_keys    (user, key) -> order, claimed with IF NOT EXISTS, expiring after a day
    unsettled_orders    the recovery pass's work list (one partition: it stays small)
"""

from __future__ import annotations

import uuid
from datetime import datetime

from runtime import cassandra as cql
from runtime.paging import decode_page_token, encode_page_token
from services.orders.domain import Order
from services.orders.store.base import IDEMPOTENCY_TTL_SECONDS, OrderStore
from services.orders.store.tables import ORDER_NEVER_TRANSITIONED, ORDERS

_ORDERS = ORDERS.cassandra
_TRANSITIONED = _ORDERS.settable(without=ORDER_NEVER_TRANSITIONED)
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS orders_by_user (
        user_id text, order_id timeuuid, PRIMARY KEY (user_id, order_id)) WITH CLUSTERING ORDER BY (order_id DESC)""",
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        user_id text, key text, order_id timeuuid, fingerprint text, PRIMARY KEY ((user_id, key)))""",
    """CREATE TABLE IF NOT EXISTS unsettled_orders (
        bucket int, order_id timeuuid, PRIMARY KEY (bucket, order_id)) WITH CLUSTERING ORDER BY (order_id ASC)""",
]
_STATEMENTS = {
    "claim": cql.conditional(f"INSERT INTO idempotency_keys (user_id, key, order_id, fingerprint) VALUES (?, ?, ?, ?) "
                             f"IF NOT EXISTS USING TTL {IDEMPOTENCY_TTL_SECONDS}"),
    "read_claim": cql.read("SELECT order_id, fingerprint FROM idempotency_keys WHERE user_id = ? AND key = ?", serial=True),
    # Every cell is written again, so the whole row lives another day.
    "reclaim": cql.conditional(f"UPDATE idempotency_keys USING TTL {IDEMPOTENCY_TTL_SECONDS} SET order_id = ?, fingerprint = ? "
                               "WHERE user_id = ? AND key = ? IF order_id = ?"),
    "insert": cql.conditional(_ORDERS.insert(suffix=" IF NOT EXISTS")),
    "index_user": cql.write("INSERT INTO orders_by_user (user_id, order_id) VALUES (?, ?)"),
    "get": cql.read(f"SELECT {_ORDERS.columns} FROM orders WHERE id = ?"),
    "transition": cql.conditional(_ORDERS.update(_TRANSITIONED, suffix=" IF status = ?")),
    "unsettle": cql.write("INSERT INTO unsettled_orders (bucket, order_id) VALUES (0, ?)"),
    "settle": cql.write("DELETE FROM unsettled_orders WHERE bucket = 0 AND order_id = ?"),
    "unsettled": cql.read("SELECT order_id FROM unsettled_orders WHERE bucket = 0 AND order_id < maxTimeuuid(?) LIMIT ?"),
    "first_page": cql.read("SELECT order_id FROM orders_by_user WHERE user_id = ? LIMIT ?"),
    "next_page": cql.read("SELECT order_id FROM orders_by_user WHERE user_id = ? AND order_id < ? LIMIT ?"),
}


class CassandraOrderStore(cql.CassandraStore, OrderStore):
    TABLES = (ORDERS,)
    SCHEMA = _SCHEMA
    STATEMENTS = _STATEMENTS

    def claim_idempotency_key(self, user_id: str, key: str, order_id: str, fingerprint: str) -> tuple[str, str]:
        claimed = self._lwt("claim", user_id, key, uuid.UUID(order_id), fingerprint)
        if cql.applied(claimed):
            return order_id, fingerprint
        row = claimed.one()  # a refused IF NOT EXISTS returns the claim that holds the key
        return str(row.order_id), row.fingerprint

    def reclaim_idempotency_key(self, user_id: str, key: str, from_order_id: str, to_order_id: str) -> bool:
        row = self._run("read_claim", user_id, key).one()
        if row is None or str(row.order_id) != from_order_id:
            return False
        return cql.applied(self._lwt("reclaim", uuid.UUID(to_order_id), row.fingerprint, user_id, key,
                                     uuid.UUID(from_order_id)))

    def create_order(self, order: Order) -> None:
        oid = uuid.UUID(order.id)
        self._run("unsettle", oid)  # first: an order is never written without being on the work list
        self._lwt("insert", *_ORDERS.values(order))
        self._run("index_user", order.user_id, oid)

    def get_order(self, order_id: str) -> Order | None:
        try:
            oid = uuid.UUID(order_id)
        except ValueError:
            return None
        row = self._run("get", oid).one()
        return _ORDERS.row(row) if row else None

    def transition(self, order: Order, from_status: str) -> bool:
        return cql.applied(self._lwt("transition", *_ORDERS.update_values(order, _TRANSITIONED), from_status))

    def mark_unsettled(self, order_id: str) -> None:
        self._run("unsettle", uuid.UUID(order_id))

    def settle(self, order_id: str) -> None:
        self._run("settle", uuid.UUID(order_id))

    def unsettled(self, created_before: datetime, limit: int = 100) -> list[Order]:
        orders = []
        for row in self._run("unsettled", created_before, limit):
            order = self.get_order(str(row.order_id))
            if order is None:  # the insert never happened (crash right after listing it): nothing to fix
                self.settle(str(row.order_id))
            else:
                orders.append(order)
        return orders

    def list_user_orders(self, user_id: str, page_size: int, page_token: str | None) -> tuple[list[Order], str | None]:
        if page_token:
            after = uuid.UUID(decode_page_token(page_token))
            if (after.int >> 76) & 0xF != 1:
                return [], None  # not a time UUID, so not a position in a user's orders: nothing after it
            rows = list(self._run("next_page", user_id, after, page_size + 1))
        else:
            rows = list(self._run("first_page", user_id, page_size + 1))
        page = [o for o in (self.get_order(str(r.order_id)) for r in rows[:page_size]) if o is not None]
        return page, encode_page_token(str(rows[page_size - 1].order_id)) if len(rows) > page_size else None
