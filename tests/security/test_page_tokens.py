"""Page tokens through the real edge: a token pages on only for the query and the user it was issued
to (runtime/page_tokens.py); carried to another query, another user, or made up, it is a 400 that
names pageToken, not a page of something else."""

from __future__ import annotations

import uuid

import requests

from harness.shop import make_product, order, shopper

NOT_ISSUED = [{"field": "pageToken", "description": "is not a nextPageToken issued for this query"}]


def _get(stack, path: str, token: str | None = None, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{stack.url}{path}", params=params, headers=headers, timeout=10)


def test_a_catalog_page_token_pages_on_only_for_its_own_query(stack):
    word = f"pager{uuid.uuid4().hex[:8]}"
    for n in range(3):
        make_product(stack, 1, name=f"{word} glass {n}")
    reader = shopper(stack)
    first = _get(stack, "/v1/products", reader, query=word, pageSize=1).json()
    token = first["nextPageToken"]
    second = _get(stack, "/v1/products", reader, query=word, pageSize=2, pageToken=token)  # another size is the same query
    assert second.status_code == 200 and {p["name"] for p in second.json()["products"]}.isdisjoint(
        {p["name"] for p in first["products"]})
    elsewhere = _get(stack, "/v1/products", reader, query="glass", pageSize=1, pageToken=token)
    assert elsewhere.status_code == 400 and elsewhere.json()["violations"] == NOT_ISSUED, elsewhere.text


def test_an_order_page_token_is_the_users_own(stack):
    product_id, alice, bob = make_product(stack, 5), shopper(stack), shopper(stack)
    for _ in range(2):
        assert order(stack, alice, product_id).status_code == 200
    token = _get(stack, "/v1/orders", alice, pageSize=1).json()["nextPageToken"]
    assert _get(stack, "/v1/orders", alice, pageSize=1, pageToken=token).status_code == 200
    stolen = _get(stack, "/v1/orders", bob, pageSize=1, pageToken=token)
    assert stolen.status_code == 400 and stolen.json()["violations"] == NOT_ISSUED, stolen.text
    made_up = _get(stack, "/v1/orders", bob, pageToken="A" * 43)
    assert made_up.status_code == 400 and made_up.json()["violations"] == NOT_ISSUED, made_up.text
