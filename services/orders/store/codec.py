"""Order lines as JSON text, the same in both stores."""

import json

from services.orders.domain import Line


def lines_to_json(lines: tuple[Line, ...]) -> str:
    return json.dumps([[l.product_id, l.quantity, l.name, l.unit_price_minor, l.currency] for l in lines])


def lines_from_json(text: str) -> tuple[Line, ...]:
    return tuple(Line(*item) for item in json.loads(text))
