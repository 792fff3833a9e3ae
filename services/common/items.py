"""Lists of (product id, quantity), as both a reservation and an order carry them."""

from services.common.ids import parse_uuid


def merge_quantities(items: list[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Items merged by product and sorted: equal requests compare equal, and writers touch products
    in one order. Each item's own rules (a UUID, a quantity in range, how many items) are declared
    in the protos and checked before a method runs (runtime/validation.py)."""
    merged: dict[str, int] = {}
    for i, (product_id, quantity) in enumerate(items):
        product_id = parse_uuid(product_id, f"items[{i}].product_id")
        merged[product_id] = merged.get(product_id, 0) + quantity
    return tuple(sorted(merged.items()))
