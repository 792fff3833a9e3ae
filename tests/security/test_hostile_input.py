"""Requests an attacker or a careless client sends, through the real edge under gunicorn: each one
gets a clear 4xx or 5xx problem, never a 500, a hang, a half-processed request or an internal detail."""

from __future__ import annotations

import base64
import json
import time

import grpc
import pytest
import requests

from harness import servers
from harness.shop import auth, make_product, my_orders, shopper, stock_of
from shop.catalog.v1 import catalog_pb2, catalog_pb2_grpc

PROBLEM = "application/problem+json"


def _is_problem(reply, status: int) -> dict:
    assert reply.status_code == status, reply.text[:500]
    assert reply.headers["Content-Type"] == PROBLEM and "Traceback" not in reply.text
    return reply.json()


@pytest.mark.parametrize("depth, status", [(50, 400), (20_000, 400), (200_000, 413)])
def test_deeply_nested_json_bodies_are_refused(stack, depth, status):
    """Deeper than protobuf's limit, deeper than Python's recursion limit, and larger than the body cap."""
    token = shopper(stack)
    body = '{"items": [' + "[" * depth + "]" * depth + "]}"
    reply = requests.post(f"{stack.url}/v1/orders", data=body, timeout=30,
                          headers=auth(token, **{"Content-Type": "application/json"}))
    _is_problem(reply, status)


def test_a_page_token_holding_deeply_nested_json_is_400(stack):
    token = shopper(stack)
    nested = base64.urlsafe_b64encode(("[" * 2_500).encode()).decode().rstrip("=")  # past the recursion limit
    problem = _is_problem(requests.get(f"{stack.url}/v1/orders", params={"pageToken": nested},
                                       headers=auth(token), timeout=30), 400)
    assert problem["violations"] == [{"field": "pageToken",
                                      "description": "must be empty or a nextPageToken from a previous page"}]


def _chunked(payload: bytes, size: int = 4096):
    for start in range(0, len(payload), size):
        yield payload[start:start + size]


def test_a_chunked_body_over_the_cap_is_413_and_nothing_is_done(stack):
    name = "chunky" + str(time.monotonic_ns())[-8:]
    payload = json.dumps({"username": name, "email": f"{name}@example.com", "password": servers.PASSWORD,
                          "profile": {"bio": "x" * 70_000}}).encode()
    reply = requests.post(f"{stack.url}/v1/accounts", data=_chunked(payload), timeout=30,
                          headers={"Content-Type": "application/json"})  # a generator body goes out chunked
    _is_problem(reply, 413)
    # Not registered with a truncated body either: the name is still free.
    assert stack.register(name)["username"] == name


def test_a_chunked_body_under_the_cap_is_read_whole(stack):
    name = "chunkok" + str(time.monotonic_ns())[-8:]
    payload = json.dumps({"username": name, "email": f"{name}@example.com", "password": servers.PASSWORD,
                          "profile": {"bio": "y" * 400}}).encode()
    reply = requests.post(f"{stack.url}/v1/accounts", data=_chunked(payload, 100), timeout=30,
                          headers={"Content-Type": "application/json"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["profile"]["bio"] == "y" * 400


def test_api_answers_forbid_framing_and_docs_carry_a_content_security_policy(stack):
    api = requests.get(f"{stack.url}/healthz", timeout=10)
    assert api.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in api.headers["Content-Security-Policy"]
    docs = requests.get(f"{stack.url}/docs", timeout=10)
    assert docs.status_code == 200 and docs.headers["X-Frame-Options"] == "DENY"
    policy = docs.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy


def test_readiness_does_not_reveal_internal_addresses(stack):
    reply = requests.get(f"{stack.url}/readyz", timeout=10)
    assert reply.status_code == 200 and reply.json() == {"status": "ready"}
    assert "127.0.0.1" not in reply.text and ":" not in json.dumps(list(reply.json().values()))


def test_required_fields_are_enforced_at_the_edge_and_in_the_service(stack):
    admin = stack.token(*stack.admin)["access_token"]
    product_id = make_product(stack, 5)
    forgot = requests.post(f"{stack.url}/v1/products/{product_id}:setStock", json={}, headers=auth(admin), timeout=10)
    assert _is_problem(forgot, 400)["violations"] == [{"field": "quantity", "description": "is required"}]
    assert stock_of(stack, product_id) == 5, "a forgotten quantity is not a quantity of 0"
    zero = requests.post(f"{stack.url}/v1/products/{product_id}:setStock", json={"quantity": "0"},
                         headers=auth(admin), timeout=10)
    assert zero.status_code == 200 and stock_of(stack, product_id) == 0
    # The service enforces the same rule for a caller that skips the edge.
    with servers.channel(stack.pki_dir, stack.catalogs[0].port, "edge") as ch, pytest.raises(grpc.RpcError) as refused:
        catalog_pb2_grpc.CatalogServiceStub(ch).SetStock(catalog_pb2.SetStockRequest(id=product_id), timeout=10,
                                                         metadata=servers.bearer(admin))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "quantity" in refused.value.details()


def test_a_budget_too_small_to_call_anything_is_504_not_500(stack):
    token = shopper(stack)
    reply = requests.get(f"{stack.url}/v1/orders", headers=auth(token, **{"grpc-timeout": "1m"}), timeout=10)
    assert _is_problem(reply, 504)["code"] == "DEADLINE_EXCEEDED"


def test_an_order_out_of_time_mid_saga_is_504_and_holds_nothing(stack):
    product_id, token = make_product(stack, 3), shopper(stack)
    # Enough budget to reach orders, too little for the calls it makes: the saga stops and compensates.
    reply = requests.post(f"{stack.url}/v1/orders", headers=auth(token, **{"Request-Timeout": "0.08"}), timeout=30,
                          json={"items": [{"productId": product_id, "quantity": "2"}]})
    assert _is_problem(reply, 504)["code"] == "DEADLINE_EXCEEDED"
    deadline = time.monotonic() + 20
    while any(o["status"] == "PENDING" for o in my_orders(stack, token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    # Cancelled by the saga itself the moment it ran out of time (not left for the recovery pass, which
    # would say "interrupted"); no order at all if the edge ran out before reaching orders.
    assert [(o["status"], o["statusReason"]) for o in my_orders(stack, token)] in ([], [("CANCELLED", "deadline_exceeded")])
    assert stock_of(stack, product_id) == 3
