"""Cassandra adapter of the orders store: tables shaped by the queries.

    orders              by order id (the source of truth; status changes are LWTs)
    orders_by_user      a user's orders, newest first (order ids are time-based UUIDs)
    idempotency_keys    (user, key) -> order, claimed with IF NOT EXISTS, expiring after a day
    unsettled_orders    the recovery pass's work list, one partition per minute of marking
    unsettled_cursor    the first minute that may still hold marks (every one before it is empty)

The work list takes a row for every order and loses it again a moment later, so most of what it
holds is deletions (tombstones, kept gc_grace_seconds, 10 days by default). A read goes through
every tombstone in its range, and Cassandra refuses one that meets more than 100000
(tombstone_failure_threshold): one partition for the whole list would stop the recovery pass after
some three hours at 10 orders a second. With a partition per minute the pass reads only the
minutes from the cursor on, and moves the cursor past a minute it found empty once no orders
process can mark in it any more (MARKS_LATE_S after its end); a minute of tombstones stays under
the threshold below about 1600 orders a second.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from cassandra.util import unix_time_from_uuid1

from runtime import cassandra as cql
from runtime.paging import decode_page_token, encode_page_token
from services.orders.domain import Order
from services.orders.store.base import IDEMPOTENCY_TTL_SECONDS, OrderStore
from services.orders.store.tables import ORDER_NEVER_TRANSITIONED, ORDERS

_ORDERS = ORDERS.cassandra
_TRANSITIONED = _ORDERS.settable(without=ORDER_NEVER_TRANSITIONED)
MINUTE_S = 60
# How long after a minute's end an orders process may still mark in it: its clock behind the
# others', or a statement sent just before the minute ended and written late. The cursor stays
# this far behind.
MARKS_LATE_S = 300
LEGACY_BUCKET = 0  # where versions before the minute buckets marked every order: read on each pass too
_REMEMBERED = 10_000  # marks whose minute this process remembers for settle (the oldest forgotten first)
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS orders_by_user (
        user_id text, order_id timeuuid, PRIMARY KEY (user_id, order_id)) WITH CLUSTERING ORDER BY (order_id DESC)""",
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        user_id text, key text, order_id timeuuid, fingerprint text, PRIMARY KEY ((user_id, key)))""",
    # bucket: the minute of the mark, counted from the epoch (an int until the year 6053)
    """CREATE TABLE IF NOT EXISTS unsettled_orders (
        bucket int, order_id timeuuid, PRIMARY KEY (bucket, order_id)) WITH CLUSTERING ORDER BY (order_id ASC)""",
    "CREATE TABLE IF NOT EXISTS unsettled_cursor (name text PRIMARY KEY, bucket int)",
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
    "unsettle": cql.write("INSERT INTO unsettled_orders (bucket, order_id) VALUES (?, ?)"),
    "settle": cql.write("DELETE FROM unsettled_orders WHERE bucket = ? AND order_id = ?"),
    "unsettled": cql.read("SELECT order_id FROM unsettled_orders WHERE bucket = ? LIMIT ?"),
    "start_cursor": cql.conditional("INSERT INTO unsettled_cursor (name, bucket) VALUES ('recovery', ?) IF NOT EXISTS"),
    "read_cursor": cql.read("SELECT bucket FROM unsettled_cursor WHERE name = 'recovery'"),
    # A plain write: two passes may move it at once, and either value is a minute already empty.
    "move_cursor": cql.write("UPDATE unsettled_cursor SET bucket = ? WHERE name = 'recovery'"),
    "first_page": cql.read("SELECT order_id FROM orders_by_user WHERE user_id = ? LIMIT ?"),
    "next_page": cql.read("SELECT order_id FROM orders_by_user WHERE user_id = ? AND order_id < ? LIMIT ?"),
}


class CassandraOrderStore(cql.CassandraStore, OrderStore):
    TABLES = (ORDERS,)
    SCHEMA = _SCHEMA
    STATEMENTS = _STATEMENTS

    def __init__(self, session, keyspace: str, clock: Callable[[], float] = time.time):
        super().__init__(session, keyspace)
        self._clock = clock
        self._marks: OrderedDict[str, int] = OrderedDict()  # order id -> the minute this process marked it in
        self._marks_lock = threading.Lock()
        # Minutes at or past the cursor found empty once no mark could come (they stay empty): a
        # pass held back by an order left unsettled reads each of them once, not on every pass.
        self._empty: set[int] = set()
        # The first pass of a new keyspace starts where no mark can be older than (a store marks
        # only after it has connected); an existing cursor stays as it is.
        self._lwt("start_cursor", self._earliest_mark())

    def _earliest_mark(self) -> int:
        """The first minute a mark made from now on can be in."""
        return self._minute() - MARKS_LATE_S // MINUTE_S - 1

    def _minute(self, at: float | None = None) -> int:
        return int((self._clock() if at is None else at) // MINUTE_S)

    def _remember(self, order_id: str, bucket: int) -> None:
        with self._marks_lock:
            self._marks[order_id] = bucket
            self._marks.move_to_end(order_id)
            while len(self._marks) > _REMEMBERED:
                self._marks.popitem(last=False)

    def _mark(self, oid: uuid.UUID) -> None:
        bucket = self._minute()
        self._run("unsettle", bucket, oid)
        self._remember(str(oid), bucket)

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
        self._mark(oid)  # first: an order is never written without being on the work list
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
        self._mark(uuid.UUID(order_id))

    def settle(self, order_id: str) -> None:
        oid = uuid.UUID(order_id)
        with self._marks_lock:
            bucket = self._marks.pop(order_id, None)
        if bucket is not None:
            self._run("settle", bucket, oid)
            return
        # Marked by a process that did not list it here, or forgotten: the minutes a mark made for a
        # call still running can be in. A mark left behind costs the recovery pass a repeat
        # (a release that finds nothing to release), never an order.
        now = self._minute()
        for bucket in (now, now - 1):
            self._run("settle", bucket, oid)

    def unsettled(self, created_before: datetime, limit: int = 100) -> list[Order]:
        before = created_before.timestamp()
        now = self._clock()
        # Minutes before `sealed` take no marks any more, and hold none created after created_before.
        sealed = self._minute(min(now, before) - MARKS_LATE_S)
        first = self._cursor()
        orders: list[Order] = []
        empty_until = first  # the minutes from `first` up to here were found empty
        for bucket in (LEGACY_BUCKET, *range(first, self._minute(now) + 1)):  # no mark is made after now
            if len(orders) >= limit:
                break
            rows = [] if bucket in self._empty else list(self._run("unsettled", bucket, limit - len(orders)))
            if not rows and bucket < sealed and bucket != LEGACY_BUCKET:
                self._empty.add(bucket)
                if bucket == empty_until:
                    empty_until = bucket + 1
            for row in rows:
                if unix_time_from_uuid1(row.order_id) >= before:
                    break  # ids ascend: the rest of this minute's orders are newer still
                order_id = str(row.order_id)
                self._remember(order_id, bucket)
                order = self.get_order(order_id)
                if order is None:  # the insert never happened (crash right after listing it): nothing to fix
                    self.settle(order_id)
                else:
                    orders.append(order)
        if empty_until > first:
            self._run("move_cursor", empty_until)
            self._empty = {bucket for bucket in self._empty if bucket >= empty_until}
        return orders

    def _cursor(self) -> int:
        row = self._run("read_cursor").one()
        return row.bucket if row is not None else self._earliest_mark()

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
