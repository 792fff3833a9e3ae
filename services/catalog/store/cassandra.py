"""Cassandra adapter of the catalog store: stock changes by compare-and-set.

Each stock row holds the available `quantity` and `holds`, a map of reservation id ->
units held. Every change is a lightweight transaction conditioned on the quantity read
just before (retried on contention), and a hold is written in the same conditional batch
as the quantity it takes: so a reservation's line is applied exactly once, and stock
never goes below zero, with any number of catalog replicas. A multi-item reservation is
applied line by line and compensated if a line is short; every writer finishes by
making the holds agree with the reservation's final status.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any

from runtime import cassandra as cql
from runtime.paging import decode_page_token, encode_page_token
from runtime.turns import Change, Turns
from services.catalog.domain import (
    PENDING,
    REJECTED,
    RELEASED,
    RESERVED,
    Contended,
    NotFound,
    Product,
    Reservation,
    ReservationConflict,
    can_be_reserved,
    check_adjustment,
)
from services.catalog.store.base import CatalogStore
from services.catalog.store.tables import PRODUCT_NEVER_SAVED, PRODUCTS

HOLD_TTL_SECONDS = 90 * 24 * 3600  # a hold (and so a cancellation's refund) lives 90 days
_SCAN_BATCH = 200
STOCK_CHANGES_TOGETHER = 32  # the most changes to one product one compare-and-set carries

_PRODUCTS = PRODUCTS.cassandra
_SAVED = _PRODUCTS.settable(without=PRODUCT_NEVER_SAVED)
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS stock (product_id text PRIMARY KEY, quantity bigint, holds map<text, bigint>)",
    "CREATE TABLE IF NOT EXISTS reservations (reservation_id text PRIMARY KEY, status text, items text, short text)",
]
_STATEMENTS = {
    "insert_product": cql.write(_PRODUCTS.insert()),
    "insert_stock": cql.write("INSERT INTO stock (product_id, quantity) VALUES (?, ?)"),
    "get_product": cql.read(f"SELECT {_PRODUCTS.columns} FROM products WHERE id = ?"),
    "save_product": cql.write(_PRODUCTS.update(_SAVED)),
    "first_products": cql.read(f"SELECT {_PRODUCTS.columns} FROM products LIMIT ?"),
    "next_products": cql.read(f"SELECT {_PRODUCTS.columns} FROM products WHERE token(id) > token(?) LIMIT ?"),
    # What a product shows: the quantity alone, not the holds beside it (one per reservation for 90
    # days: a product's reads would otherwise carry every order of its last three months).
    "read_quantity": cql.read("SELECT quantity FROM stock WHERE product_id = ?"),
    # A compare-and-set's first guess: the consistency level's view (LOCAL_QUORUM sees every committed
    # change). A round that lost, or whose outcome is unknown, reads at SERIAL.
    "read_stock": cql.read("SELECT quantity, holds FROM stock WHERE product_id = ?"),
    "read_stock_serial": cql.read("SELECT quantity, holds FROM stock WHERE product_id = ?", serial=True),
    "cas_quantity": cql.conditional("UPDATE stock SET quantity = ? WHERE product_id = ? IF quantity = ?"),
    "add_hold": cql.write(f"UPDATE stock USING TTL {HOLD_TTL_SECONDS} SET holds[?] = ? WHERE product_id = ?"),
    "drop_hold": cql.write("DELETE holds[?] FROM stock WHERE product_id = ?"),
    "read_reservation": cql.read("SELECT reservation_id, status, items, short FROM reservations WHERE reservation_id = ?", serial=True),
    "new_reservation": cql.conditional("INSERT INTO reservations (reservation_id, status, items, short) VALUES (?, ?, ?, '[]') "
                                       "IF NOT EXISTS"),
    "finish_reservation": cql.conditional("UPDATE reservations SET status = ?, short = ? WHERE reservation_id = ? IF status = ?"),
}


def _reservation(row) -> Reservation:
    return Reservation(row.reservation_id, row.status, tuple(tuple(i) for i in json.loads(row.items)),
                       tuple(json.loads(row.short or "[]")))


class CassandraCatalogStore(cql.CassandraStore, CatalogStore):
    TABLES = (PRODUCTS,)
    SCHEMA = _SCHEMA
    STATEMENTS = _STATEMENTS

    def __init__(self, session, keyspace: str):
        super().__init__(session, keyspace)
        self._turns: Turns[str] = Turns(lambda: cql.NoTimeLeft("the call ran out of time waiting to change the stock"),
                                        STOCK_CHANGES_TOGETHER, requeue=(cql.NoTimeLeft,),
                                        answer_margin=cql.ANSWER_MARGIN_S)

    # products ---------------------------------------------------------------------------------

    def create_product(self, product: Product) -> None:
        self._run("insert_stock", product.id, product.stock)
        self._run("insert_product", *_PRODUCTS.values(product))

    def _stock(self, product_id: str) -> int:
        """The quantity in stock, as a product shows it (0 for a product without a stock row)."""
        row = self._run("read_quantity", product_id).one()
        return (row.quantity or 0) if row else 0

    def _stock_and_holds(self, product_id: str, *, serial: bool = False) -> tuple[int, dict] | None:
        """(quantity, holds) as a compare-and-set decides on them; None for a product without a stock row."""
        row = self._run("read_stock_serial" if serial else "read_stock", product_id).one()
        return None if row is None else (row.quantity or 0, dict(row.holds or {}))

    def get_product(self, product_id: str) -> Product | None:
        row = self._run("get_product", product_id).one()
        if row is None:
            return None
        return _PRODUCTS.row(row, stock=self._stock(product_id))

    def save_product(self, product: Product) -> None:
        self._run("save_product", *_PRODUCTS.update_values(product, _SAVED))

    def list_products(self, page_size: int, page_token: str | None, query: str = "") -> tuple[list[Product], str | None]:
        after = decode_page_token(page_token) if page_token else None
        needle = query.lower()
        matches: list[Any] = []  # rows
        # Cassandra cannot filter by substring, so scan in token order and filter here (bounded batches).
        while len(matches) <= page_size:
            rows = list(self._run("next_products", after, _SCAN_BATCH) if after else self._run("first_products", _SCAN_BATCH))
            matches += [r for r in rows if needle in r.name.lower() or needle in (r.description or "").lower()]
            if len(rows) < _SCAN_BATCH:
                break
            after = rows[-1].id
        page = [_PRODUCTS.row(r, stock=self._stock(r.id)) for r in matches[:page_size]]
        return page, encode_page_token(page[-1].id) if len(matches) > page_size else None

    # stock ------------------------------------------------------------------------------------

    def _compare_and_set(self, product_id: str, change, *, sees_own_write: bool = True) -> int:
        """Applies change(quantity, holds) -> (new quantity, hold to add, hold to drop) | None by
        compare-and-set on the quantity (runtime.cassandra.compare_and_set); returns the resulting quantity.

        Changes to one product from this process take turns (runtime/turns.py): those queued while
        a compare-and-set is on the row go together in the next one, decided in the order they
        came, so the threads of a process do not lose Paxos rounds to each other on a hot product.

        A change that sees its own earlier write (a hold names its reservation; an absolute quantity
        is the same twice) settles an unknown outcome by deciding again from a fresh SERIAL read; any
        other change is written alone and reports the error rather than risk applying twice.

        The first round decides on a read at the consistency level, which sees every committed change
        but not one in flight: if it missed one, the write's condition (decided by Paxos after that
        change completes) fails, and every later round reads at SERIAL. Uncontended, a change is one
        Paxos round instead of two."""
        return self._turns.take(product_id, Change(change, alone=not sees_own_write),
                                lambda group: self._write_together(product_id, group))

    def _write_together(self, product_id: str, group: list[Change]) -> dict[Change, int]:
        """One compare-and-set carrying every change of `group`: each decides on the quantity and holds
        the ones before it leave. Returns the quantity after it for each."""
        rounds = itertools.count()
        after: dict[Change, int] = {}

        def read():
            current = self._stock_and_holds(product_id, serial=next(rounds) > 0)
            if current is None:
                raise NotFound(f"product {product_id} does not exist")
            return current

        def decide(current):
            quantity, holds = current[0], dict(current[1])
            added: dict[str, int] = {}
            dropped: set[str] = set()
            for member in group:
                decision = member.decide(quantity, holds)
                if decision is not None:
                    quantity, add_hold, drop_hold = decision
                    if add_hold:
                        holds[add_hold[0]] = added[add_hold[0]] = add_hold[1]
                        dropped.discard(add_hold[0])
                    if drop_hold:
                        del holds[drop_hold]
                        added.pop(drop_hold, None)
                        dropped.add(drop_hold)
                after[member] = quantity
            if quantity == current[0] and not added and not dropped:
                return None
            return quantity, added, dropped

        def write(current, decision):
            quantity, added, dropped = decision
            statements: list[tuple[str, tuple]] = [("cas_quantity", (quantity, product_id, current[0]))]
            statements += [("add_hold", (reservation_id, held, product_id)) for reservation_id, held in added.items()]
            statements += [("drop_hold", (reservation_id, product_id)) for reservation_id in dropped]
            return self._batch(*statements)

        cql.compare_and_set(
            read, decide, write,
            unknown=cql.Unknown.RAISE if group[0].alone else cql.Unknown.DECIDE_AGAIN,
            contended=lambda: Contended(f"product {product_id} is changing too fast; retry"))
        return after

    def set_stock(self, product_id: str, quantity: int) -> int:
        return self._compare_and_set(product_id, lambda current, holds: (quantity, None, None))

    def adjust_stock(self, product_id: str, delta: int, most: int) -> int:
        def change(current, holds):
            # Checked against the quantity this round read and conditions on: the bounds hold for what it writes.
            return check_adjustment(current, delta, most), None, None
        return self._compare_and_set(product_id, change, sees_own_write=False)

    def _hold(self, reservation_id: str, product_id: str, quantity: int) -> bool:
        """Takes `quantity` for the reservation unless already taken; False if there is not enough."""
        enough = []

        def change(current, holds):
            if reservation_id in holds:
                enough.append(True)
                return None
            enough.append(current >= quantity)
            return (current - quantity, (reservation_id, quantity), None) if current >= quantity else None
        try:
            self._compare_and_set(product_id, change)
        except NotFound:
            return False
        return enough[-1]

    def _unhold(self, reservation_id: str, product_id: str) -> None:
        def change(current, holds):
            if reservation_id not in holds:
                return None
            return current + holds[reservation_id], None, reservation_id
        with contextlib.suppress(NotFound):
            self._compare_and_set(product_id, change)

    def _finish(self, reservation: Reservation, status: str, short: list[str]) -> Reservation:
        finished = self._lwt("finish_reservation", status, json.dumps(short), reservation.reservation_id, PENDING)
        if cql.applied(finished):
            final = Reservation(reservation.reservation_id, status, reservation.items, tuple(short))
        else:  # someone else finished it (or our own reply was lost): what it is now
            final = _reservation(self._run("read_reservation", reservation.reservation_id).one())
        if final.status != RESERVED:
            # Whoever lost a race (a concurrent release, a rejecting twin) leaves no hold behind.
            for product_id, _ in reservation.items:
                self._unhold(reservation.reservation_id, product_id)
        return final

    def reserve(self, reservation_id: str, items: tuple[tuple[str, int], ...]) -> Reservation:
        # One Paxos round: a reservation that exists already (a repeat) comes back in the refusal.
        created = self._lwt("new_reservation", reservation_id, PENDING, json.dumps(items))
        reservation = (Reservation(reservation_id, PENDING, items) if cql.applied(created)
                       else _reservation(created.one()))
        if reservation.status != RELEASED and reservation.items != items:
            raise ReservationConflict(f"reservation {reservation_id} was made with other items")
        if reservation.status != PENDING:
            return reservation
        for product_id, quantity in items:
            product = self._run("get_product", product_id).one()
            if product is None or not can_be_reserved(product.state) or not self._hold(reservation_id, product_id, quantity):
                return self._finish(reservation, REJECTED, [product_id])
        return self._finish(reservation, RESERVED, [])

    def release(self, reservation_id: str) -> Reservation:
        created = self._lwt("new_reservation", reservation_id, RELEASED, "[]")
        if cql.applied(created):
            return Reservation(reservation_id, RELEASED, ())
        # A repeat after a lost success reads RELEASED and has nothing more to do.
        reservation, _ = cql.compare_and_set(
            lambda: _reservation(self._run("read_reservation", reservation_id).one()),
            lambda r: RELEASED if r.status in (PENDING, RESERVED) else None,
            lambda r, status: self._run("finish_reservation", status, "[]", reservation_id, r.status),
            unknown=cql.Unknown.DECIDE_AGAIN,
            contended=lambda: Contended(f"reservation {reservation_id} is changing too fast; retry"))
        for product_id, _ in reservation.items:
            self._unhold(reservation_id, product_id)
        return _reservation(self._run("read_reservation", reservation_id).one())
