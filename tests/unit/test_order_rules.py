"""Order and catalog rules that need no service: line normalisation, what "the same order" is.
The fields' own rules are the protos' (tests/unit/test_field_rules.py)."""

import uuid

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


def test_order_ids_are_time_based_uuids():
    assert uuid.UUID(orders.new_order_id()).version == 1


def test_reservation_items_are_merged_and_sorted():
    assert catalog.normalise_items([(B, 1), (A, 1), (B, 1)]) == tuple(sorted([(A, 1), (B, 2)]))
