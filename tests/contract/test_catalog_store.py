"""The catalog store contract on both adapters: products, paging, and stock that never oversells."""

from __future__ import annotations

import uuid

import pytest

from harness.concurrency import race
from runtime.paging import InvalidPageToken
from services.catalog.domain import (
    ARCHIVED,
    REJECTED,
    RELEASED,
    RESERVED,
    InsufficientStock,
    NotFound,
    Product,
    ReservationConflict,
    StockLimitExceeded,
    utcnow,
)
from tests.support.stores import ADAPTERS, open_adapter


@pytest.fixture(params=ADAPTERS)
def store(request, tmp_path):
    opened = open_adapter(request, tmp_path, "catalog", "SqliteCatalogStore", "CassandraCatalogStore")
    yield opened
    opened.close()


def product(store, name="Mug", stock=10, description="") -> Product:
    now = utcnow()
    made = Product(id=str(uuid.uuid4()), name=name, description=description, currency="EUR", price_minor=1250,
                   created_at=now, updated_at=now, stock=stock)
    store.create_product(made)
    return made


def rid() -> str:
    return str(uuid.uuid4())


def test_product_round_trip_and_save(store):
    made = product(store, stock=4)
    assert store.get_product(made.id) == made
    made.name, made.state = "Big mug", ARCHIVED
    store.save_product(made)
    assert store.get_product(made.id) == made
    assert store.get_product(str(uuid.uuid4())) is None


def test_several_products_are_read_at_once_and_unknown_ids_left_out(store):
    mug, cup = product(store, stock=4), product(store, name="Cup", stock=0)
    unknown = str(uuid.uuid4())
    assert store.get_products([cup.id, unknown, mug.id, cup.id]) == {mug.id: mug, cup.id: cup}
    assert store.get_products([unknown]) == {}


def test_listing_pages_and_filters_by_text(store):
    ids = {product(store, name=f"Tea {i}").id for i in range(5)}
    product(store, name="Coffee", description="dark roast")
    seen, token = [], None
    while True:
        page, token = store.list_products(2, token, "TEA")
        seen += [p.id for p in page]
        if token is None:
            break
    assert sorted(seen) == sorted(ids)
    assert [p.name for p in store.list_products(10, None, "roast")[0]] == ["Coffee"]
    with pytest.raises(InvalidPageToken):
        store.list_products(2, "nope", "")


LIMIT = 1_000  # any limit: the service passes the one catalog.proto declares


def test_stock_can_be_set_and_adjusted_but_never_below_zero(store):
    made = product(store, stock=3)
    assert store.adjust_stock(made.id, -3, LIMIT) == 0
    with pytest.raises(InsufficientStock):
        store.adjust_stock(made.id, -1, LIMIT)
    assert store.set_stock(made.id, 7) == 7 and store.get_product(made.id).stock == 7
    with pytest.raises(NotFound):
        store.set_stock(str(uuid.uuid4()), 1)


def test_an_adjustment_never_takes_stock_past_the_limit(store):
    made = product(store, stock=LIMIT - 5)
    assert store.adjust_stock(made.id, 5, LIMIT) == LIMIT
    with pytest.raises(StockLimitExceeded):
        store.adjust_stock(made.id, 1, LIMIT)
    with pytest.raises(StockLimitExceeded):
        store.adjust_stock(made.id, 999_999_999, LIMIT)
    assert store.get_product(made.id).stock == LIMIT


def test_concurrent_adjustments_stop_exactly_at_the_limit(store):
    made = product(store, stock=LIMIT - 10)
    outcomes = race(12, lambda i: _adjusted(store, made.id, 1))
    assert outcomes.count(True) == 10 and outcomes.count(False) == 2
    assert store.get_product(made.id).stock == LIMIT


def _adjusted(store, product_id: str, delta: int) -> bool:
    try:
        store.adjust_stock(product_id, delta, LIMIT)
    except StockLimitExceeded:
        return False
    return True


def test_a_reservation_takes_every_item_or_none(store):
    plenty, scarce = product(store, stock=10), product(store, stock=1)
    rejected = store.reserve(rid(), tuple(sorted([(plenty.id, 2), (scarce.id, 5)])))
    assert rejected.status == REJECTED and rejected.short_product_ids == (scarce.id,)
    assert (store.get_product(plenty.id).stock, store.get_product(scarce.id).stock) == (10, 1)
    held = store.reserve(rid(), tuple(sorted([(plenty.id, 2), (scarce.id, 1)])))
    assert held.status == RESERVED
    assert (store.get_product(plenty.id).stock, store.get_product(scarce.id).stock) == (8, 0)


def test_repeating_a_reservation_or_a_release_has_its_effect_once(store):
    made, reservation = product(store, stock=5), rid()
    assert store.reserve(reservation, ((made.id, 2),)).status == RESERVED
    assert store.reserve(reservation, ((made.id, 2),)).status == RESERVED
    assert store.get_product(made.id).stock == 3
    with pytest.raises(ReservationConflict):
        store.reserve(reservation, ((made.id, 3),))
    assert store.release(reservation).status == RELEASED
    assert store.release(reservation).status == RELEASED
    assert store.get_product(made.id).stock == 5


def test_a_reservation_released_before_it_arrives_holds_nothing(store):
    made, reservation = product(store, stock=5), rid()
    assert store.release(reservation).status == RELEASED
    assert store.reserve(reservation, ((made.id, 2),)).status == RELEASED
    assert store.get_product(made.id).stock == 5


def test_unknown_or_archived_products_are_short(store):
    archived = product(store, stock=5)
    archived.state = ARCHIVED
    store.save_product(archived)
    missing = str(uuid.uuid4())
    assert store.reserve(rid(), ((missing, 1),)).status == REJECTED
    assert store.reserve(rid(), ((archived.id, 1),)).status == REJECTED
    assert store.get_product(archived.id).stock == 5


def test_fifty_concurrent_reservations_for_ten_units_never_oversell(store):
    made = product(store, stock=10)
    outcomes = race(50, lambda i: store.reserve(rid(), ((made.id, 1),)).status)
    assert outcomes.count(RESERVED) == 10 and outcomes.count(REJECTED) == 40
    assert store.get_product(made.id).stock == 0


def test_reservations_releases_and_adjustments_racing_on_one_product_keep_the_count(store):
    # On Cassandra the changes one process queues for a product are written together (runtime/turns.py):
    # holds and releases share compare-and-sets, an adjustment goes alone; none is lost or applied twice.
    made = product(store, stock=20)
    held = [rid() for _ in range(10)]
    for reservation in held:
        assert store.reserve(reservation, ((made.id, 1),)).status == RESERVED

    def change(i: int):
        if i < 10:
            return store.release(held[i]).status
        if i < 20:
            return store.reserve(rid(), ((made.id, 1),)).status
        return _adjusted(store, made.id, 1)
    outcomes = race(30, change)
    assert outcomes.count(RELEASED) == 10 and outcomes.count(RESERVED) == 10 and outcomes.count(True) == 10
    assert store.get_product(made.id).stock == 20 - 10 + 10 - 10 + 10


def test_the_same_reservation_sent_concurrently_is_applied_once(store):
    made, reservation = product(store, stock=10), rid()
    outcomes = race(12, lambda i: store.reserve(reservation, ((made.id, 3),)).status)
    assert set(outcomes) == {RESERVED}
    assert store.get_product(made.id).stock == 7
