"""Writes that would leave data no one asked for, through the real edge under gunicorn and directly at
the catalog over mTLS: half a price is refused rather than stored with an amount of 0, stock stays
within the bound SetStock declares however adjustments add up, and an order's merged quantities and
total stay within the bounds the protos declare. Each refusal is a 4xx problem; nothing changes."""

from __future__ import annotations

import grpc
import pytest
import requests
from google.protobuf import field_mask_pb2

from harness import servers
from harness.shop import auth, make_product, my_orders, order, shopper, stock_of
from runtime.validation import declared_max
from shop.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from shop.orders.v1 import orders_pb2

PROBLEM = "application/problem+json"
STOCK_LIMIT = declared_max(catalog_pb2.SetStockRequest.DESCRIPTOR.fields_by_name["quantity"])
MOST_PER_LINE = declared_max(orders_pb2.OrderItem.DESCRIPTOR.fields_by_name["quantity"])
MOST_AMOUNT = declared_max(catalog_pb2.Money.DESCRIPTOR.fields_by_name["amount_minor"])


def _problem(reply, status: int) -> dict:
    assert reply.status_code == status, reply.text[:500]
    assert reply.headers["Content-Type"] == PROBLEM and "Traceback" not in reply.text
    return reply.json()


def _price(stack, product_id: str, admin: str) -> dict:
    return requests.get(f"{stack.url}/v1/products/{product_id}", headers=auth(admin), timeout=10).json()["price"]


def test_a_patch_with_half_a_price_is_refused_and_the_price_stays(stack):
    admin = stack.token(*stack.admin)["access_token"]
    product_id = make_product(stack, 5)
    for half in ({"currencyCode": "EUR"}, {"amountMinor": "1"}):
        reply = requests.patch(f"{stack.url}/v1/products/{product_id}", json={"price": half}, headers=auth(admin), timeout=10)
        assert [v["description"] for v in _problem(reply, 400)["violations"]] == ["is required"]
    assert _price(stack, product_id, admin) == {"currencyCode": "EUR", "amountMinor": "1500"}


@pytest.mark.parametrize("paths", [["price"], []], ids=["mask price", "no mask"])
def test_update_product_over_grpc_with_half_a_price_is_refused_and_the_price_stays(stack, paths):
    admin = stack.token(*stack.admin)["access_token"]
    product_id = make_product(stack, 5)
    request = catalog_pb2.UpdateProductRequest(
        id=product_id, product=catalog_pb2.Product(price=catalog_pb2.Money(currency_code="EUR")),
        update_mask=field_mask_pb2.FieldMask(paths=paths))
    with servers.channel(stack.pki_dir, stack.catalogs[0].port, "edge") as ch, pytest.raises(grpc.RpcError) as refused:
        catalog_pb2_grpc.CatalogServiceStub(ch).UpdateProduct(request, timeout=10, metadata=servers.bearer(admin))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "product.price.amount_minor: is required" in refused.value.details()
    assert _price(stack, product_id, admin) == {"currencyCode": "EUR", "amountMinor": "1500"}


def test_adjusting_stock_cannot_pass_the_limit_setstock_declares(stack):
    admin = stack.token(*stack.admin)["access_token"]
    product_id = make_product(stack, STOCK_LIMIT - 999_999_999)

    def adjust(delta: int):
        return requests.post(f"{stack.url}/v1/products/{product_id}:adjustStock", json={"delta": str(delta)},
                             headers=auth(admin), timeout=10)

    assert adjust(999_999_999).json()["stock"] == str(STOCK_LIMIT)  # up to the limit is fine
    refused = _problem(adjust(999_999_999), 409)
    assert refused["reason"] == "STOCK_LIMIT_EXCEEDED"
    assert refused["violations"] == [{"field": "delta", "description": f"would make stock exceed {STOCK_LIMIT}"}]
    assert stock_of(stack, product_id, admin) == STOCK_LIMIT


def test_a_product_listed_twice_cannot_buy_past_one_lines_bound(stack):
    product_id, token = make_product(stack, 5 * MOST_PER_LINE), shopper(stack)
    half = MOST_PER_LINE // 2 + 1
    reply = requests.post(f"{stack.url}/v1/orders", headers=auth(token), timeout=30, json={"items": [
        {"productId": product_id, "quantity": str(half)}, {"productId": product_id, "quantity": str(half)}]})
    assert _problem(reply, 400)["violations"][0]["field"] == "items"
    assert stock_of(stack, product_id) == 5 * MOST_PER_LINE and my_orders(stack, token) == []


def test_an_order_total_cannot_pass_the_largest_amount_of_money(stack):
    admin, token = stack.token(*stack.admin)["access_token"], shopper(stack)
    created = requests.post(f"{stack.url}/v1/products", headers=auth(admin), timeout=10, json={
        "name": "Dearest mug", "price": {"currencyCode": "EUR", "amountMinor": str(MOST_AMOUNT)}}).json()
    requests.post(f"{stack.url}/v1/products/{created['id']}:setStock", json={"quantity": "5"}, headers=auth(admin), timeout=10)
    assert _problem(order(stack, token, created["id"], 2), 409)["reason"] == "TOTAL_TOO_LARGE"
    assert stock_of(stack, created["id"]) == 5
    assert [o["status"] for o in my_orders(stack, token)] == ["REJECTED"]
