"""Order lines as JSON text, the same in both stores."""

import json

from services.orders.domain import Line


def lines_to_json(lines: tuple[Line, ...]) -> str:
    return json.dumps([[line.product_id, line.quantity, line.name, line.unit_price_minor, line.currency] for line in lines])


def lines_from_json(text: str) -> tuple[Line, ...]:
    return tuple(Line(*item) for item in json.loads(text))
