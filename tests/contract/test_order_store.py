"""The orders store contract on both adapters."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import timedelta

import pytest

from harness.concurrency import race
from runtime.paging import InvalidPageToken, encode_page_token
from services.orders.domain import CANCELLED, CONFIRMED, PENDING, Line, Order, new_order_id, utcnow
from tests.support.stores import ADAPTERS, open_adapter


@pytest.fixture(params=ADAPTERS)
def store(request, tmp_path):
    opened = open_adapter(request, tmp_path, "orders", "SqliteOrderStore", "CassandraOrderStore")
    yield opened
    opened.close()


def new_order(user="u1", status=PENDING) -> Order:
    now = utcnow()
    return Order(id=new_order_id(), user_id=user, lines=(Line(str(uuid.uuid4()), 2, "Mug", 1250, "EUR"),),
                 status=status, created_at=now, updated_at=now, currency="EUR", total_minor=2500)


def test_order_round_trip(store):
    order = new_order()
    store.create_order(order)
    assert store.get_order(order.id) == order
    assert store.get_order(new_order_id()) is None


def test_creating_an_existing_order_again_changes_nothing(store):
    order = new_order()
    store.create_order(order)
    store.transition(dataclasses.replace(order, status=CONFIRMED), PENDING)
    store.create_order(order)  # a second writer with the same id (a retried key)
    assert store.get_order(order.id).status == CONFIRMED


def test_status_changes_only_from_the_expected_status(store):
    order = new_order()
    store.create_order(order)
    confirmed = dataclasses.replace(order, status=CONFIRMED, updated_at=utcnow())
    assert store.transition(confirmed, PENDING) is True
    assert store.transition(dataclasses.replace(order, status=CANCELLED), PENDING) is False
    assert store.get_order(order.id).status == CONFIRMED


def test_one_writer_wins_a_concurrent_status_change(store):
    order = new_order()
    store.create_order(order)
    outcomes = race(10, lambda i: store.transition(
        dataclasses.replace(order, status=CONFIRMED if i % 2 else CANCELLED, reason=str(i)), PENDING))
    assert outcomes.count(True) == 1


def test_the_first_claim_of_an_idempotency_key_wins(store):
    first, second = new_order_id(), new_order_id()
    assert store.claim_idempotency_key("u1", "key-1", first, "fp-a") == (first, "fp-a")
    assert store.claim_idempotency_key("u1", "key-1", second, "fp-b") == (first, "fp-a")
    assert store.claim_idempotency_key("u2", "key-1", second, "fp-b") == (second, "fp-b")  # keys are per user


def test_concurrent_claims_agree_on_one_order(store):
    ids = [new_order_id() for _ in range(12)]
    winners = race(12, lambda i: store.claim_idempotency_key("u1", "race", ids[i], "fp"))
    assert len(set(winners)) == 1


def test_a_key_moves_to_a_new_order_only_from_the_order_it_is_bound_to(store):
    failed, retried, stray = new_order_id(), new_order_id(), new_order_id()
    store.claim_idempotency_key("u1", "key-2", failed, "fp")
    assert not store.reclaim_idempotency_key("u1", "key-2", stray, retried)
    assert store.reclaim_idempotency_key("u1", "key-2", failed, retried)
    assert store.claim_idempotency_key("u1", "key-2", stray, "fp") == (retried, "fp")
    assert not store.reclaim_idempotency_key("u1", "key-2", failed, stray)  # moved once, from there only


def test_concurrent_reclaims_move_a_key_once(store):
    failed, ids = new_order_id(), [new_order_id() for _ in range(8)]
    store.claim_idempotency_key("u1", "key-3", failed, "fp")
    moved = [ids[i] for i, won in race(8, lambda i: (i, store.reclaim_idempotency_key("u1", "key-3", failed, ids[i])))
             if won]
    assert len(moved) == 1 and store.claim_idempotency_key("u1", "key-3", failed, "fp")[0] == moved[0]


def test_new_orders_are_unsettled_until_settled(store):
    order = new_order()
    store.create_order(order)
    later = utcnow() + timedelta(seconds=5)
    assert order.id in [o.id for o in store.unsettled(later)]
    assert order.id not in [o.id for o in store.unsettled(order.created_at - timedelta(seconds=5))]
    store.settle(order.id)
    assert order.id not in [o.id for o in store.unsettled(later)]
    store.mark_unsettled(order.id)
    assert order.id in [o.id for o in store.unsettled(later)]


def test_a_users_orders_page_newest_first(store):
    made = []
    for _ in range(5):
        made.append(new_order(user="pager"))
        store.create_order(made[-1])
        time.sleep(0.002)
    elsewhere = new_order(user="someone-else")
    store.create_order(elsewhere)
    seen, token = [], None
    while True:
        page, token = store.list_user_orders("pager", 2, token)
        seen += [o.id for o in page]
        if token is None:
            break
    assert seen == [o.id for o in reversed(made)]
    with pytest.raises(InvalidPageToken):
        store.list_user_orders("pager", 2, "garbage")
    # A token of the issued shape naming another user's order is a position, not a way in: a page
    # of this user's orders only (possibly empty), never an error.
    page, _ = store.list_user_orders("pager", 2, encode_page_token(elsewhere.id))
    assert all(o.user_id == "pager" for o in page)
