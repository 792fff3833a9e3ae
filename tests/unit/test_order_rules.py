"""Order and catalog rules that need no service: line normalisation, what "the same order" is."""

import uuid

import pytest

from services.catalog import domain as catalog
from services.orders import domain as orders

A, B = str(uuid.uuid4()), str(uuid.uuid4())


def test_lines_for_one_product_are_merged_and_sorted():
    lines = orders.normalise_lines([(B, 1), (A, 2), (B, 3)])
    assert [(line.product_id, line.quantity) for line in lines] == sorted([(A, 2), (B, 4)])


def test_the_same_items_in_another_order_have_the_same_fingerprint():
    assert orders.fingerprint(orders.normalise_lines([(A, 1), (B, 2)])) == \
        orders.fingerprint(orders.normalise_lines([(B, 2), (A, 1)]))
    assert orders.fingerprint(orders.normalise_lines([(A, 1)])) != orders.fingerprint(orders.normalise_lines([(A, 2)]))


@pytest.mark.parametrize("items, field", [
    ([], "items"), ([("not-a-uuid", 1)], "items[0].product_id"), ([(A, 0)], "items[0].quantity"),
    ([(A, 1001)], "items[0].quantity"), ([(str(uuid.uuid4()), 1)] * 51, "items"),
])
def test_bad_order_lines_name_the_field(items, field):
    with pytest.raises(orders.InvalidArgument) as bad:
        orders.normalise_lines(items)
    assert field in {f for f, _ in bad.value.violations}


@pytest.mark.parametrize("key", ["x" * 129, "has space", "tab\there", "ünicode"])
def test_idempotency_keys_are_short_visible_ascii(key):
    with pytest.raises(orders.InvalidArgument):
        orders.check_idempotency_key(key)


def test_order_ids_are_time_based_uuids():
    assert uuid.UUID(orders.new_order_id()).version == 1


@pytest.mark.parametrize("name, currency, price, field", [
    ("", "EUR", 1, "product.name"), ("Mug", "eur", 1, "product.price.currency_code"),
    ("Mug", "EUR", -1, "product.price.amount_minor"), ("Mug", "EUR", 10**12, "product.price.amount_minor"),
])
def test_product_rules_name_the_field(name, currency, price, field):
    assert field in {f for f, _ in catalog.product_problems(name, "", currency, price)}


def test_reservation_items_are_merged_sorted_and_bounded():
    assert catalog.normalise_items([(B, 1), (A, 1), (B, 1)]) == tuple(sorted([(A, 1), (B, 2)]))
    with pytest.raises(catalog.InvalidArgument):
        catalog.normalise_items([(A, 0)])
