"""Embedded adapter of the orders store: SQLite."""

from __future__ import annotations

from datetime import datetime

from runtime.paging import decode_page_token, encode_page_token
from runtime.sqlite import SqliteStore, now_ms, to_ms
from services.orders.domain import Order
from services.orders.store.base import IDEMPOTENCY_TTL_SECONDS, OrderStore
from services.orders.store.tables import ORDER_NEVER_TRANSITIONED, ORDERS

_ORDERS = ORDERS.sqlite
_TRANSITIONED = _ORDERS.settable(without=ORDER_NEVER_TRANSITIONED)
_SCHEMA = [
    "CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, created_at DESC, id DESC)",
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        user_id TEXT NOT NULL, key TEXT NOT NULL, order_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
        expires_at INTEGER NOT NULL, PRIMARY KEY (user_id, key))""",
    "CREATE TABLE IF NOT EXISTS unsettled_orders (order_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL)",
]


class SqliteOrderStore(SqliteStore, OrderStore):
    TABLES = (ORDERS,)
    SCHEMA = _SCHEMA

    def claim_idempotency_key(self, user_id: str, key: str, order_id: str, fingerprint: str) -> tuple[str, str]:
        now = now_ms()
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE user_id = ? AND key = ? AND expires_at < ?", (user_id, key, now))
            conn.execute("INSERT OR IGNORE INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                         (user_id, key, order_id, fingerprint, now + IDEMPOTENCY_TTL_SECONDS * 1000))
            row = conn.execute("SELECT order_id, fingerprint FROM idempotency_keys WHERE user_id = ? AND key = ?",
                               (user_id, key)).one()  # inserted above, or there already
        return row["order_id"], row["fingerprint"]

    def reclaim_idempotency_key(self, user_id: str, key: str, from_order_id: str, to_order_id: str) -> bool:
        return self._db.execute(
            "UPDATE idempotency_keys SET order_id = ?, expires_at = ? WHERE user_id = ? AND key = ? AND order_id = ?",
            (to_order_id, now_ms() + IDEMPOTENCY_TTL_SECONDS * 1000, user_id, key, from_order_id)) == 1

    def create_order(self, order: Order) -> None:
        with self._db.transaction() as conn:
            conn.execute(_ORDERS.insert(verb="INSERT OR IGNORE"), _ORDERS.values(order))
            conn.execute("INSERT OR REPLACE INTO unsettled_orders VALUES (?, ?)", (order.id, to_ms(order.created_at)))

    def get_order(self, order_id: str) -> Order | None:
        rows = self._db.query(f"SELECT {_ORDERS.columns} FROM orders WHERE id = ?", (order_id,))
        return _ORDERS.row(rows[0]) if rows else None

    def transition(self, order: Order, from_status: str) -> bool:
        return self._db.execute(_ORDERS.update(_TRANSITIONED, suffix=" AND status = ?"),
                                (*_ORDERS.update_values(order, _TRANSITIONED), from_status)) == 1

    def mark_unsettled(self, order_id: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO unsettled_orders SELECT id, created_at FROM orders WHERE id = ?", (order_id,))

    def settle(self, order_id: str) -> None:
        self._db.execute("DELETE FROM unsettled_orders WHERE order_id = ?", (order_id,))

    def unsettled(self, created_before: datetime, limit: int = 100) -> list[Order]:
        rows = self._db.query(
            "SELECT o.* FROM unsettled_orders u JOIN orders o ON o.id = u.order_id WHERE u.created_at < ? "
            "ORDER BY u.created_at LIMIT ?", (to_ms(created_before), limit))
        return [_ORDERS.row(r) for r in rows]

    def list_user_orders(self, user_id: str, page_size: int, page_token: str | None) -> tuple[list[Order], str | None]:
        if page_token:
            after = self.get_order(decode_page_token(page_token))
            if after is None or after.user_id != user_id:
                return [], None  # a position that holds none of this user's orders: nothing after it
            rows = self._db.query(
                f"SELECT {_ORDERS.columns} FROM orders WHERE user_id = ? AND (created_at, id) < (?, ?) "
                "ORDER BY created_at DESC, id DESC LIMIT ?", (user_id, to_ms(after.created_at), after.id, page_size + 1))
        else:
            rows = self._db.query(f"SELECT {_ORDERS.columns} FROM orders WHERE user_id = ? ORDER BY created_at DESC, id DESC "
                                  "LIMIT ?", (user_id, page_size + 1))
        page = [_ORDERS.row(r) for r in rows[:page_size]]
        return page, encode_page_token(page[-1].id) if len(rows) > page_size else None
