"""The orders work list (the unsettled orders the recovery pass goes through) on a real Cassandra.

Every order goes on the list and off it again, so the list is mostly deletions: tombstones, which
a read goes through one by one and which Cassandra refuses a read over past 100000. What a pass
reads must stay bounded however many orders were settled before it, and no order left unsettled
may drop off the list: listed pass after pass, by a restarted process as by the one that marked it,
and again when it is cancelled long after it was placed.

The store's clock is set by the test (it decides the minute a mark goes in and how far the pass
may move on); the orders' ids are made now, so they are always older than what a pass asks for.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

import pytest

from services.orders.domain import new_order_id
from services.orders.store.cassandra import CassandraOrderStore
from tests.contract.test_order_store import new_order

pytestmark = pytest.mark.cassandra

MORE_THAN_WARNED = 1200  # Cassandra warns of a read through more than 1000 tombstones (tombstone_warn_threshold)
FEWER_THAN_WARNED = 200


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def connect(cassandra_settings, clock):
    """Opens stores on one fresh keyspace, as the orders processes of one cluster would."""
    settings = cassandra_settings()
    opened: list[CassandraOrderStore] = []

    def open_store() -> CassandraOrderStore:
        opened.append(CassandraOrderStore.connect(settings, clock=clock))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def recovery_pass(store: CassandraOrderStore, clock: Clock, age_s: float = 30) -> list[str]:
    """The ids a recovery pass run now would go through (RECOVERY_AGE_SECONDS = age_s)."""
    return [order.id for order in store.unsettled(datetime.fromtimestamp(clock() - age_s, UTC))]


def mark_and_settle(store: CassandraOrderStore, count: int) -> None:
    for _ in range(count):
        order_id = new_order_id()
        store.mark_unsettled(order_id)
        store.settle(order_id)


def tombstone_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "runtime.cassandra" and "tombstone" in r.getMessage() and "unsettled_orders" in r.getMessage()]


def test_a_recovery_pass_reads_through_settled_orders_once(connect, clock, caplog, monkeypatch):
    store = connect()
    caplog.set_level(logging.WARNING, logger="runtime.cassandra")
    mark_and_settle(store, MORE_THAN_WARNED)
    clock.advance(10 * 60)
    assert recovery_pass(store, clock) == []
    assert tombstone_warnings(caplog), "the first pass after them reads the settled orders (Cassandra warns of it)"

    caplog.clear()
    monkeypatch.setattr("runtime.cassandra._warned", {})  # the same warning again is logged, not held back a minute
    for _ in range(3):  # a few minutes of orders, each minute fewer than Cassandra warns of
        mark_and_settle(store, FEWER_THAN_WARNED)
        clock.advance(60)
        assert recovery_pass(store, clock) == []
    assert tombstone_warnings(caplog) == [], "later passes read the earlier minutes' settled orders again"

    restarted = connect()  # a new process goes on from where the passes got to
    assert recovery_pass(restarted, clock) == []
    assert tombstone_warnings(caplog) == []


def test_an_order_left_unsettled_is_listed_until_it_is_settled(connect, clock):
    store = connect()
    stuck = new_order()
    store.create_order(stuck)
    mark_and_settle(store, 20)
    for minutes in (1, 10, 45):
        clock.advance(minutes * 60)
        mark_and_settle(store, 5)
        assert recovery_pass(store, clock) == [stuck.id]

    restarted = connect()  # a process that never marked it, as after a crash
    assert recovery_pass(restarted, clock) == [stuck.id]
    restarted.settle(stuck.id)
    clock.advance(10 * 60)
    assert recovery_pass(store, clock) == recovery_pass(restarted, clock) == []


def test_an_order_cancelled_long_after_it_was_placed_is_listed_again(connect, clock):
    store = connect()
    order = new_order()
    store.create_order(order)
    store.settle(order.id)
    clock.advance(2 * 3600)
    assert recovery_pass(store, clock) == []  # the passes have moved on past the minute it was placed in
    store.mark_unsettled(order.id)  # cancelled: its release is not yet confirmed
    assert recovery_pass(store, clock) == [order.id]
    store.settle(order.id)
    assert recovery_pass(store, clock) == []


def test_an_order_marked_elsewhere_is_settled_here(connect, clock):
    """settle() in a process that neither marked nor listed the order (it knows no minute for it)."""
    marking, settling = connect(), connect()
    order = new_order()
    marking.create_order(order)
    settling.settle(order.id)
    clock.advance(10 * 60)
    assert recovery_pass(marking, clock) == []


def test_orders_marked_by_a_version_without_minutes_are_listed(connect, clock):
    """Versions before the minute buckets marked every order in bucket 0: those marks are worked off."""
    store = connect()
    order = new_order()
    store.create_order(order)
    store.settle(order.id)
    store._session.execute(f"INSERT INTO {store._keyspace}.unsettled_orders (bucket, order_id) VALUES (0, %s)",
                           (uuid.UUID(order.id),))
    clock.advance(60)
    assert recovery_pass(store, clock) == [order.id]
    store.settle(order.id)
    assert recovery_pass(store, clock) == []
    assert store._session.execute(f"SELECT order_id FROM {store._keyspace}.unsettled_orders WHERE bucket = 0").one() is None
