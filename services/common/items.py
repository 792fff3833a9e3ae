"""Lists of (product id, quantity), as both a reservation and an order carry them."""

from services.common.errors import InvalidArgument
from services.common.ids import parse_uuid


def merge_quantities(items: list[tuple[str, int]], *, max_items: int, max_quantity: int) -> tuple[tuple[str, int], ...]:
    """Validated items merged by product and sorted: equal requests compare equal, and writers
    touch products in one order. InvalidArgument names every bad item."""
    if not items:
        raise InvalidArgument([("items", "at least one item is required")])
    if len(items) > max_items:
        raise InvalidArgument([("items", f"at most {max_items} items")])
    merged: dict[str, int] = {}
    problems = []
    for i, (product_id, quantity) in enumerate(items):
        try:
            product_id = parse_uuid(product_id, f"items[{i}].product_id")
        except InvalidArgument as bad:
            problems += bad.violations
            continue
        if not 1 <= quantity <= max_quantity:
            problems.append((f"items[{i}].quantity", f"must be between 1 and {max_quantity}"))
        merged[product_id] = merged.get(product_id, 0) + quantity
    if problems:
        raise InvalidArgument(problems)
    return tuple(sorted(merged.items()))
