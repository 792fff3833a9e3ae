"""Shop actions over real HTTP, shared by the end-to-end tests."""

from __future__ import annotations

import random
import time
import uuid

import requests

from harness.concurrency import race


def auth(token: str, **headers: str) -> dict:
    """HTTP headers that carry a bearer token (and any others given)."""
    return {"Authorization": f"Bearer {token}", **headers}


def make_product(stack, stock: int, name: str = "Limited mug") -> str:
    admin = stack.token(*stack.admin)["access_token"]
    created = requests.post(f"{stack.url}/v1/products", headers=auth(admin), timeout=10, json={
        "name": name, "description": "for tests", "price": {"currencyCode": "EUR", "amountMinor": "1500"}})
    assert created.status_code == 200, created.text
    product_id = created.json()["id"]
    assert requests.post(f"{stack.url}/v1/products/{product_id}:setStock", json={"quantity": str(stock)},
                         headers=auth(admin), timeout=10).status_code == 200
    return product_id


def stock_of(stack, product_id: str, admin: str | None = None) -> int:
    """The product's stock, read with `admin` (an administrator's access token), or after signing in as one."""
    admin = admin or stack.token(*stack.admin)["access_token"]
    reply = requests.get(f"{stack.url}/v1/products/{product_id}", headers=auth(admin), timeout=10)
    assert reply.status_code == 200, reply.text
    return int(reply.json()["stock"])


def shopper(stack) -> str:
    """A newly registered customer's access token."""
    name = f"shopper{uuid.uuid4().hex[:12]}"
    stack.register(name)
    return stack.token(name)["access_token"]


def order(stack, token, product_id, quantity=1, key=None, timeout=30):
    headers = auth(token, **({"Idempotency-Key": key} if key else {}))
    return requests.post(f"{stack.url}/v1/orders", headers=headers, timeout=timeout,
                         json={"items": [{"productId": product_id, "quantity": str(quantity)}]})


def my_orders(stack, token) -> list[dict]:
    return requests.get(f"{stack.url}/v1/orders", params={"pageSize": 100}, headers=auth(token), timeout=10).json()["orders"]


def order_retrying_refusals(stack, token, product_id, attempts: int = 20):
    """An order from a client that honours the edge's overload answer: a request the edge refused (503,
    reason OVERLOADED) never reached a service, so after Retry-After (and a little jitter) it is sent again."""
    for _ in range(attempts):
        reply = order(stack, token, product_id)
        if reply.status_code != 503 or reply.json().get("reason") != "OVERLOADED":
            return reply
        time.sleep(float(reply.headers["Retry-After"]) * random.uniform(1.0, 1.5))
    return reply


def order_retrying_as_the_api_says(stack, token, product_id, quantity=1, attempts: int = 10, journal=None):
    """(final reply, replies before it) of an order from a client that follows the API's advice:
    while the first request with its Idempotency-Key is still being processed (reason
    IDEMPOTENCY_KEY_IN_USE) it asks again with the same key; after any other 503 or 504 nothing is
    held for the order (the saga compensated before answering), so it orders again with a new key.
    Each retry waits for Retry-After (with a little jitter). `journal`, a list, gets (key, reply)
    for every request sent."""
    key, earlier = uuid.uuid4().hex, []
    for _ in range(attempts):
        reply = order(stack, token, product_id, quantity, key=key)
        if journal is not None:
            journal.append((key, reply))
        reason = reply.json().get("reason") if reply.headers.get("Content-Type", "").endswith("json") else None
        if reply.status_code not in (409, 503, 504) or (reply.status_code == 409 and reason != "IDEMPOTENCY_KEY_IN_USE"):
            return reply, earlier
        earlier.append(reply)
        if reason != "IDEMPOTENCY_KEY_IN_USE":
            key = uuid.uuid4().hex
        time.sleep(float(reply.headers.get("Retry-After", "1")) * random.uniform(1.0, 1.5))
    return reply, earlier


def assert_exactly_ten_of_fifty(stack):
    """Fifty racing orders for ten units: exactly ten confirm, forty are OUT_OF_STOCK, none oversold. Fifty at
    once is more than the edge has threads: on a slow store it refuses some at first, and they come back."""
    product_id, token = make_product(stack, 10), shopper(stack)
    replies = race(50, lambda i: order_retrying_refusals(stack, token, product_id))
    statuses = sorted(r.status_code for r in replies)
    others = [f"{r.status_code} {r.text[:200]}" for r in replies if r.status_code not in (200, 409)]
    assert statuses.count(200) == 10 and statuses.count(409) == 40, (statuses, others[:5])
    refused = next(r for r in replies if r.status_code == 409)
    assert refused.headers["Content-Type"] == "application/problem+json" and refused.json()["reason"] == "OUT_OF_STOCK"
    assert stock_of(stack, product_id) == 0
    confirmed = [o for o in my_orders(stack, token) if o["status"] == "CONFIRMED"]
    assert len(confirmed) == 10 and all(o["total"]["amountMinor"] == "1500" for o in confirmed)


def wait_for(condition, timeout: float = 20.0) -> bool:
    """Whether condition() became true within `timeout` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
