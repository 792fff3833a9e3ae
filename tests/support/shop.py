"""Shop actions over real HTTP, shared by the end-to-end tests."""

from __future__ import annotations

import uuid

import requests


def _auth(token: str, **headers: str) -> dict:
    return {"Authorization": f"Bearer {token}", **headers}


def make_product(stack, stock: int, name: str = "Limited mug") -> str:
    admin = stack.token(*stack.admin)["access_token"]
    created = requests.post(f"{stack.url}/v1/products", headers=_auth(admin), timeout=10, json={
        "name": name, "description": "for tests", "price": {"currencyCode": "EUR", "amountMinor": "1500"}})
    assert created.status_code == 200, created.text
    product_id = created.json()["id"]
    assert requests.post(f"{stack.url}/v1/products/{product_id}:setStock", json={"quantity": str(stock)},
                         headers=_auth(admin), timeout=10).status_code == 200
    return product_id


def stock_of(stack, product_id: str) -> int:
    admin = stack.token(*stack.admin)["access_token"]
    return int(requests.get(f"{stack.url}/v1/products/{product_id}", headers=_auth(admin), timeout=10).json()["stock"])


def shopper(stack) -> str:
    """A newly registered customer's access token."""
    name = f"shopper{uuid.uuid4().hex[:12]}"
    stack.register(name)
    return stack.token(name)["access_token"]


def order(stack, token, product_id, quantity=1, key=None, timeout=30):
    headers = _auth(token, **({"Idempotency-Key": key} if key else {}))
    return requests.post(f"{stack.url}/v1/orders", headers=headers, timeout=timeout,
                         json={"items": [{"productId": product_id, "quantity": str(quantity)}]})


def my_orders(stack, token) -> list[dict]:
    return requests.get(f"{stack.url}/v1/orders", params={"pageSize": 100}, headers=_auth(token), timeout=10).json()["orders"]
