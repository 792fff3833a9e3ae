"""The catalog through the edge: administrators manage products, shoppers read them."""

import requests

from harness.shop import auth, make_product, order, shopper


def test_admin_creates_updates_lists_and_archives_a_product(stack):
    admin = stack.token(*stack.admin)["access_token"]
    created = requests.post(f"{stack.url}/v1/products", headers=auth(admin), timeout=10, json={
        "name": "Cortado glass", "description": "Tempered, 140 ml",
        "price": {"currencyCode": "EUR", "amountMinor": "890"}}).json()
    assert created["stock"] == "0" and created["state"] == "AVAILABLE"
    renamed = requests.patch(f"{stack.url}/v1/products/{created['id']}",
                             headers=auth(admin), timeout=10, json={"name": "Cortado glass, pair"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Cortado glass, pair"
    assert renamed.json()["description"] == "Tempered, 140 ml"
    found = requests.get(f"{stack.url}/v1/products", params={"query": "CORTADO"}, headers=auth(admin), timeout=10).json()
    assert [p["id"] for p in found["products"]] == [created["id"]]
    archived = requests.post(f"{stack.url}/v1/products/{created['id']}:archive", json={}, headers=auth(admin), timeout=10)
    assert archived.json()["state"] == "ARCHIVED"


def test_money_is_validated_and_stock_cannot_go_negative(stack):
    admin = stack.token(*stack.admin)["access_token"]
    bad = requests.post(f"{stack.url}/v1/products", headers=auth(admin), timeout=10, json={
        "name": "Float price", "price": {"currencyCode": "euro", "amountMinor": "-5"}})
    assert bad.status_code == 400
    assert {v["field"] for v in bad.json()["violations"]} == {"product.price.currencyCode", "product.price.amountMinor"}
    product_id = make_product(stack, 2)
    negative = requests.post(f"{stack.url}/v1/products/{product_id}:adjustStock", json={"delta": "-3"},
                             headers=auth(admin), timeout=10)
    assert negative.status_code == 409 and negative.json()["reason"] == "INSUFFICIENT_STOCK"


def test_shoppers_read_but_cannot_write_and_cannot_order_archived_products(stack):
    token = shopper(stack)
    product_id = make_product(stack, 5)
    assert requests.get(f"{stack.url}/v1/products/{product_id}", headers=auth(token), timeout=10).status_code == 200
    assert requests.post(f"{stack.url}/v1/products/{product_id}:setStock", json={"quantity": "99"},
                         headers=auth(token), timeout=10).status_code == 403
    admin = stack.token(*stack.admin)["access_token"]
    requests.post(f"{stack.url}/v1/products/{product_id}:archive", json={}, headers=auth(admin), timeout=10)
    refused = order(stack, token, product_id)
    assert refused.status_code == 409 and refused.json()["reason"] == "PRODUCT_UNAVAILABLE"


def test_several_products_are_read_at_once_in_the_order_asked_or_not_at_all(stack):
    token = shopper(stack)
    first, second = make_product(stack, 1), make_product(stack, 2)
    url = f"{stack.url}/v1/products:batchGet"
    both = requests.get(url, params={"ids": [second, first, second]}, headers=auth(token), timeout=10)
    assert both.status_code == 200 and [p["id"] for p in both.json()["products"]] == [second, first, second]
    unknown = "0f8fad5b-d9cb-469f-a165-70867728950e"
    missing = requests.get(url, params={"ids": [first, unknown]}, headers=auth(token), timeout=10)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"
    assert missing.json()["violations"] == [{"field": "ids[1]", "description": "no such product"}]
    too_many = requests.get(url, params={"ids": [first] * 51}, headers=auth(token), timeout=10)
    assert too_many.status_code == 400 and {v["field"] for v in too_many.json()["violations"]} == {"ids"}
