"""Embedded adapter of the catalog store: SQLite, one transaction per stock operation.

A reservation's holds are rows in `holds`, written in the same transaction as the stock
they take, so "all items or none" and "once per reservation id" hold by construction.
"""

from __future__ import annotations

import json
import sqlite3

from runtime.paging import decode_page_token, encode_page_token
from runtime.sqlite import SqliteStore
from services.catalog import domain
from services.catalog.store.base import CatalogStore
from services.catalog.store.tables import PRODUCT_NEVER_SAVED, PRODUCTS

_PRODUCTS = PRODUCTS.sqlite
_SAVED = _PRODUCTS.settable(without=PRODUCT_NEVER_SAVED)
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS reservations (
        reservation_id TEXT PRIMARY KEY, status TEXT NOT NULL, items TEXT NOT NULL, short TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS holds (
        reservation_id TEXT NOT NULL, product_id TEXT NOT NULL, quantity INTEGER NOT NULL,
        PRIMARY KEY (reservation_id, product_id))""",
]


def _reservation(row: sqlite3.Row) -> domain.Reservation:
    return domain.Reservation(row["reservation_id"], row["status"], tuple(tuple(i) for i in json.loads(row["items"])),
                       tuple(json.loads(row["short"])))


class SqliteCatalogStore(SqliteStore, CatalogStore):
    TABLES = (PRODUCTS,)
    SCHEMA = _SCHEMA

    def create_product(self, product: domain.Product) -> None:
        self._db.execute(_PRODUCTS.insert(), _PRODUCTS.values(product))

    def get_product(self, product_id: str) -> domain.Product | None:
        rows = self._db.query(f"SELECT {_PRODUCTS.columns} FROM products WHERE id = ?", (product_id,))
        return _PRODUCTS.row(rows[0]) if rows else None

    def get_products(self, product_ids: list[str]) -> dict[str, domain.Product]:
        unique = list(dict.fromkeys(product_ids))
        rows = self._db.query(f"SELECT {_PRODUCTS.columns} FROM products WHERE id IN ({', '.join('?' * len(unique))})",
                              tuple(unique))
        return {row["id"]: _PRODUCTS.row(row) for row in rows}

    def save_product(self, product: domain.Product) -> None:
        self._db.execute(_PRODUCTS.update(_SAVED), _PRODUCTS.update_values(product, _SAVED))

    def list_products(self, page_size: int, page_token: str | None, query: str = "") -> tuple[list[domain.Product], str | None]:
        after = decode_page_token(page_token) if page_token else ""
        pattern = f"%{query.lower()}%"
        rows = self._db.query(
            f"SELECT {_PRODUCTS.columns} FROM products WHERE id > ? AND (lower(name) LIKE ? OR lower(description) LIKE ?) "
            "ORDER BY id LIMIT ?", (after, pattern, pattern, page_size + 1))
        page = [_PRODUCTS.row(r) for r in rows[:page_size]]
        return page, encode_page_token(page[-1].id) if len(rows) > page_size else None

    def set_stock(self, product_id: str, quantity: int) -> int:
        if self._db.execute("UPDATE products SET stock = ? WHERE id = ?", (quantity, product_id)) != 1:
            raise domain.NotFound(f"product {product_id} does not exist")
        return quantity

    def adjust_stock(self, product_id: str, delta: int, most: int) -> int:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT stock FROM products WHERE id = ?", (product_id,)).fetchone()
            if row is None:
                raise domain.NotFound(f"product {product_id} does not exist")
            stock = domain.check_adjustment(row["stock"], delta, most)
            conn.execute("UPDATE products SET stock = ? WHERE id = ?", (stock, product_id))
            return stock

    def reserve(self, reservation_id: str, items: tuple[tuple[str, int], ...]) -> domain.Reservation:
        with self._db.transaction() as conn:
            existing = conn.execute("SELECT * FROM reservations WHERE reservation_id = ?", (reservation_id,)).fetchone()
            if existing is not None:
                found = _reservation(existing)
                if found.status != domain.RELEASED and found.items != items:
                    raise domain.ReservationConflict(f"reservation {reservation_id} was made with other items")
                return found
            short = []
            for product_id, quantity in items:
                row = conn.execute("SELECT stock, state FROM products WHERE id = ?", (product_id,)).fetchone()
                if row is None or not domain.can_be_reserved(row["state"]) or row["stock"] < quantity:
                    short.append(product_id)
            status = domain.REJECTED if short else domain.RESERVED
            if not short:
                for product_id, quantity in items:
                    conn.execute("UPDATE products SET stock = stock - ? WHERE id = ?", (quantity, product_id))
                    conn.execute("INSERT INTO holds VALUES (?, ?, ?)", (reservation_id, product_id, quantity))
            conn.execute("INSERT INTO reservations VALUES (?, ?, ?, ?)",
                         (reservation_id, status, json.dumps(items), json.dumps(short)))
            return domain.Reservation(reservation_id, status, items, tuple(short))

    def release(self, reservation_id: str) -> domain.Reservation:
        with self._db.transaction() as conn:
            existing = conn.execute("SELECT * FROM reservations WHERE reservation_id = ?", (reservation_id,)).fetchone()
            if existing is None:
                conn.execute("INSERT INTO reservations VALUES (?, ?, '[]', '[]')", (reservation_id, domain.RELEASED))
                return domain.Reservation(reservation_id, domain.RELEASED, ())
            for hold in conn.execute("SELECT product_id, quantity FROM holds WHERE reservation_id = ?",
                                     (reservation_id,)).fetchall():
                conn.execute("UPDATE products SET stock = stock + ? WHERE id = ?", (hold["quantity"], hold["product_id"]))
            conn.execute("DELETE FROM holds WHERE reservation_id = ?", (reservation_id,))
            status = existing["status"] if existing["status"] == domain.REJECTED else domain.RELEASED
            conn.execute("UPDATE reservations SET status = ? WHERE reservation_id = ?", (status, reservation_id))
            return domain.Reservation(reservation_id, status, _reservation(existing).items, _reservation(existing).short_product_ids)
