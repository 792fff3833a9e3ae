"""What a retry with the same Idempotency-Key answers (services/orders/service.py), with in-memory
ports and the real SQLite store: the first request's outcome, never a PENDING order as if placed,
and never later than the retry's own deadline. Also the limits an order's results keep.

The first request is held inside the saga by a catalog whose reservation waits for the test to
let it go, so "still in progress" is a state the test controls, not a race against the clock.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.orders import domain
from services.orders.service import MOST_AMOUNT_MINOR, MOST_PER_PRODUCT, OrdersService
from services.orders.store.sqlite import SqliteOrderStore
from tests.support.saga_fakes import FakeAccounts, FakeCatalog, call, product

USER = "0b6f5a1e-8d1c-4a53-9a3f-4f0a8f7c2d11"
HOLD_SECONDS = 30  # a bound for a broken test only: every wait below ends on an event


class HeldCatalog(FakeCatalog):
    """A catalog whose reservations wait, once `hold()` is called, until `let_go()`."""

    def __init__(self):
        super().__init__()
        self.reserving = threading.Event()  # a held reservation has arrived
        self._go = threading.Event()
        self._go.set()

    def hold(self) -> None:
        self._go.clear()

    def let_go(self) -> None:
        self._go.set()

    def reserve(self, order_id, lines, call):
        self.reserving.set()
        assert self._go.wait(HOLD_SECONDS), "the test never let the reservation go"
        return super().reserve(order_id, lines, call)


@pytest.fixture
def shop():
    store = SqliteOrderStore.open(":memory:")
    catalog = HeldCatalog()
    yield OrdersService(store, FakeAccounts(USER), catalog), store, catalog
    catalog.let_go()
    store.close()


@pytest.fixture
def first_request_in_progress(shop):
    """A first request with key "k-1" for one mug, held at its reservation; yields (mug, its future)."""
    orders, _, catalog = shop
    mug = product(catalog, stock=5)
    catalog.hold()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(orders.place, USER, [(mug, 1)], "k-1", call(HOLD_SECONDS))
        assert catalog.reserving.wait(HOLD_SECONDS), "the first request never reached its reservation"
        yield mug, first
        catalog.let_go()


def test_a_retry_while_the_first_request_is_placing_gives_up_at_its_own_deadline_not_with_a_pending_order(
        shop, first_request_in_progress):
    orders, store, catalog = shop
    mug, first = first_request_in_progress
    with pytest.raises(domain.StillBeingPlaced) as waited:
        orders.place(USER, [(mug, 1)], "k-1", call(0.3))
    assert waited.value.retry_after == 1.0 and "still being processed; retry" in str(waited.value)
    assert not first.done(), "the retry answered before the first request was let go"
    catalog.let_go()
    confirmed = first.result(HOLD_SECONDS)
    assert confirmed.status == domain.CONFIRMED
    again = orders.place(USER, [(mug, 1)], "k-1", call())
    assert (again.id, again.status) == (confirmed.id, domain.CONFIRMED) and catalog.stock[mug] == 4
    assert len(store.list_user_orders(USER, 10, None)[0]) == 1


def test_a_retry_waiting_for_the_first_request_answers_its_outcome_once_it_is_final(shop, first_request_in_progress):
    orders, _, catalog = shop
    mug, first = first_request_in_progress
    with ThreadPoolExecutor(1) as pool:
        retry = pool.submit(orders.place, USER, [(mug, 1)], "k-1", call(HOLD_SECONDS))
        catalog.let_go()
        confirmed = first.result(HOLD_SECONDS)
        assert retry.result(HOLD_SECONDS).id == confirmed.id and confirmed.status == domain.CONFIRMED


@pytest.mark.parametrize("break_catalog, error", [
    (lambda catalog: setattr(catalog, "down", True), domain.DependencyFailed),
    (lambda catalog: setattr(catalog, "slow_price_seconds", 0.3), domain.DependencyTimedOut),
])
def test_a_retry_after_a_compensated_failure_places_the_order_once(shop, break_catalog, error):
    """The first request failed on the way and held nothing: the key's retry places the order (under
    a new id: the cancelled one stays as the record of the failed attempt), and later retries answer it."""
    orders, store, catalog = shop
    mug = product(catalog, stock=5)
    break_catalog(catalog)
    with pytest.raises(error):
        orders.place(USER, [(mug, 1)], "k-1", call(0.2))
    catalog.down, catalog.slow_price_seconds = False, 0.0  # the outage is over
    placed = orders.place(USER, [(mug, 1)], "k-1", call())
    again = orders.place(USER, [(mug, 1)], "k-1", call())
    assert placed.status == domain.CONFIRMED and again.id == placed.id
    statuses = sorted((o.status, o.reason) for o in store.list_user_orders(USER, 10, None)[0])
    assert [status for status, _ in statuses] == [domain.CANCELLED, domain.CONFIRMED]
    assert catalog.stock[mug] == 4


def test_racing_retries_of_a_failed_key_place_one_order(shop):
    orders, _, catalog = shop
    mug = product(catalog, stock=5)
    catalog.down = True
    with pytest.raises(domain.DependencyFailed):
        orders.place(USER, [(mug, 1)], "k-1", call(0.2))
    catalog.down = False
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: _answer(orders, mug), range(4)))
    placed = {a.id for a in answers if isinstance(a, domain.Order)}
    assert len(placed) == 1 and catalog.stock[mug] == 4, answers
    assert all(isinstance(a, (domain.Order, domain.StillBeingPlaced)) for a in answers), answers


def _answer(orders, mug):
    try:
        return orders.place(USER, [(mug, 1)], "k-1", call())
    except domain.OrderError as error:
        return error


def test_a_retry_of_an_order_the_customer_cancelled_shows_the_cancelled_order(shop):
    orders, _, catalog = shop
    mug = product(catalog, stock=5)
    placed = orders.place(USER, [(mug, 1)], "k-1", call())
    orders.cancel(placed.id, USER, False, call())
    again = orders.place(USER, [(mug, 1)], "k-1", call())
    assert (again.id, again.status, again.reason) == (placed.id, domain.CANCELLED, domain.CANCELLED_BY_USER)


def test_an_order_the_recovery_pass_cancelled_while_it_was_placed_is_not_acknowledged(shop, first_request_in_progress):
    _, store, catalog = shop
    mug, first = first_request_in_progress
    [pending] = store.list_user_orders(USER, 10, None)[0]
    # Another replica's recovery pass took it for abandoned (it is older than RECOVERY_AGE_SECONDS).
    assert store.transition(dataclasses.replace(pending, status=domain.CANCELLED, reason=domain.INTERRUPTED), domain.PENDING)
    catalog.let_go()
    with pytest.raises(domain.DependencyFailed):
        first.result(HOLD_SECONDS)
    assert catalog.stock[mug] == 5 and store.get_order(pending.id).status == domain.CANCELLED


def test_a_compensation_never_releases_the_stock_of_an_order_a_twin_placing_confirmed(shop):
    """The first request claimed the key and is between its two writes; the retry places the order
    under the claimed id, and the first confirms it while the retry's reservation reply is lost."""
    orders, store, catalog = shop
    mug = product(catalog, stock=5)
    claimed = domain.new_order_id()
    lines = domain.normalise_lines([(mug, 2)])
    store.claim_idempotency_key(USER, "k-1", claimed, domain.fingerprint(lines))
    reserve = FakeCatalog.reserve.__get__(catalog)

    def reserved_and_confirmed_by_the_twin_but_reply_lost(order_id, reserve_lines, reserve_call):
        reserve(order_id, reserve_lines, reserve_call)
        pending = store.get_order(order_id)
        store.transition(dataclasses.replace(pending, status=domain.CONFIRMED), domain.PENDING)
        raise domain.DependencyFailed("connection reset")

    catalog.reserve = reserved_and_confirmed_by_the_twin_but_reply_lost
    with pytest.raises(domain.DependencyFailed):
        orders.place(USER, [(mug, 2)], "k-1", call())
    assert store.get_order(claimed).status == domain.CONFIRMED
    assert catalog.stock[mug] == 3 and claimed in catalog.holds  # the confirmed order keeps its stock


# --- limits the protos declare hold for results too ---------------------------------------------

def test_a_product_listed_twice_cannot_pass_one_lines_bound(shop):
    orders, store, catalog = shop
    mug = product(catalog, stock=10 * MOST_PER_PRODUCT)
    half = MOST_PER_PRODUCT // 2 + 1
    with pytest.raises(domain.InvalidArgument) as refused:
        orders.place(USER, [(mug, half), (mug, half)], "", call())
    assert refused.value.violations == [("items", f"product {mug} is ordered more than {MOST_PER_PRODUCT} times in all")]
    assert catalog.reserve_calls == 0 and store.list_user_orders(USER, 10, None)[0] == []
    assert orders.place(USER, [(mug, MOST_PER_PRODUCT - 1), (mug, 1)], "", call()).lines[0].quantity == MOST_PER_PRODUCT


def test_an_order_whose_total_would_pass_the_largest_amount_is_rejected_and_holds_nothing(shop):
    orders, store, catalog = shop
    dear = product(catalog, stock=5, price=MOST_AMOUNT_MINOR)
    with pytest.raises(domain.Rejected) as refused:
        orders.place(USER, [(dear, 2)], "", call())
    assert refused.value.reason == "TOTAL_TOO_LARGE" and catalog.reserve_calls == 0
    [order] = store.list_user_orders(USER, 10, None)[0]
    assert (order.status, order.reason) == (domain.REJECTED, "total_too_large") and catalog.stock[dear] == 5
    assert orders.place(USER, [(dear, 1)], "", call()).total_minor == MOST_AMOUNT_MINOR
