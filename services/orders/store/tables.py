"""The orders table, written once for both adapters (runtime/tables.py).

A field added to Order becomes a column of `orders` in both stores, added to existing tables when
a store opens; only what differs from the field's annotation is declared here. The idempotency
keys, the unsettled list and Cassandra's by-user index are each adapter's own.
"""

import json
import uuid

from runtime.tables import Kind, Table, as_text, column
from services.orders.domain import Line, Order


def lines_to_json(lines: tuple[Line, ...]) -> str:
    return json.dumps([[line.product_id, line.quantity, line.name, line.unit_price_minor, line.currency] for line in lines])


def lines_from_json(text: str) -> tuple[Line, ...]:
    return tuple(Line(*item) for item in json.loads(text))


# A time-based UUID: Cassandra sorts a user's orders by it; SQLite keeps its text.
_TIMEUUID = Kind("timeuuid", "TEXT", to_cql=uuid.UUID, from_cql=str)

ORDERS = Table("orders", Order, key="id", columns=[
    column("id", _TIMEUUID),
    column("lines", as_text(lines_to_json, lines_from_json)),  # the same JSON text in both stores
])
# What a transition never writes: who placed the order, and when.
ORDER_NEVER_TRANSITIONED = ("user_id", "created_at")
