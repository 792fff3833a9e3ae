"""A client generated from the served OpenAPI document with openapi-python-client (pinned in
requirements.lock) calls the API without edits: sign-up, tokens, products as an admin, an order
with an Idempotency-Key, the order list, a cancellation and an error answer."""

from __future__ import annotations

import importlib
import os
import pathlib
import subprocess
import sys
import uuid

import pytest
import requests

from harness.servers import PASSWORD

PACKAGE = "generated_shop_client"


@pytest.fixture(scope="module")
def client_package(stack, tmp_path_factory):
    where = tmp_path_factory.mktemp("client")
    (where / "openapi.json").write_text(requests.get(f"{stack.url}/openapi.json", timeout=10).text)
    generated = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(where / "openapi.json"),
         "--output-path", str(where / PACKAGE), "--meta", "none"],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"})  # its ruff hook
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _api(package, module: str):
    return importlib.import_module(f"{package.__name__}.api.{module}")


def _model(package, module: str, name: str):
    return getattr(importlib.import_module(f"{package.__name__}.models.{module}"), name)


def test_the_generated_client_places_and_cancels_an_order(stack, client_package):
    pkg = client_package
    anonymous = pkg.Client(base_url=stack.url)
    accounts = "shop_accounts_v_1_accounts_service"
    catalog, orders = "shop_catalog_v_1_catalog_service", "shop_orders_v_1_orders_service"

    username = f"gen{uuid.uuid4().hex[:8]}"
    created = _api(pkg, f"{accounts}.accounts_service_create_account").sync(client=anonymous, body=_model(
        pkg, "shop_accounts_v1_create_account_request", "ShopAccountsV1CreateAccountRequest")(
        username=username, email=f"{username}@example.com", password=PASSWORD))
    assert created.username == username and created.id

    token_body = _model(pkg, "token_body", "TokenBody")
    token = _api(pkg, "o_auth_2_0_and_health.token")
    shopper = token.sync(client=anonymous, body=token_body(grant_type="password", username=username, password=PASSWORD))
    admin = token.sync(client=anonymous, body=token_body(grant_type="password", username=stack.admin[0],
                                                         password=stack.admin[1]))
    as_shopper = pkg.AuthenticatedClient(base_url=stack.url, token=shopper.access_token)
    as_admin = pkg.AuthenticatedClient(base_url=stack.url, token=admin.access_token)

    money = _model(pkg, "shop_catalog_v1_money", "ShopCatalogV1Money")
    product = _api(pkg, f"{catalog}.catalog_service_create_product").sync(client=as_admin, body=_model(
        pkg, "shop_catalog_v1_product", "ShopCatalogV1Product")(name="Generated mug", price=money(
            currency_code="EUR", amount_minor=1500)))
    stocked = _api(pkg, f"{catalog}.catalog_service_set_stock").sync(
        id=product.id, client=as_admin, body=_model(pkg, "catalog_service_set_stock_body", "CatalogServiceSetStockBody")(
            quantity=5))
    assert int(stocked.stock) == 5

    item = _model(pkg, "shop_orders_v1_order_item", "ShopOrdersV1OrderItem")
    body = _model(pkg, "orders_service_create_order_body", "OrdersServiceCreateOrderBody")(
        items=[item(product_id=product.id, quantity=2)])
    create_order = _api(pkg, f"{orders}.orders_service_create_order")
    placed = create_order.sync(client=as_shopper, body=body, idempotency_key="generated-1")
    again = create_order.sync(client=as_shopper, body=body, idempotency_key="generated-1")
    assert placed.status.value == "CONFIRMED" and again.id == placed.id  # one order per key
    listed = _api(pkg, f"{orders}.orders_service_list_my_orders").sync(client=as_shopper)
    assert [o.id for o in listed.orders] == [placed.id]
    cancelled = _api(pkg, f"{orders}.orders_service_cancel_order").sync(
        id=placed.id, client=as_shopper, body=_model(pkg, "orders_service_cancel_order_body", "OrdersServiceCancelOrderBody")())
    assert cancelled.status.value == "CANCELLED"

    refused = create_order.sync_detailed(client=as_shopper, body=_model(
        pkg, "orders_service_create_order_body", "OrdersServiceCreateOrderBody")(items=[item(product_id=product.id,
                                                                                            quantity=6)]))
    assert refused.status_code == 409 and refused.parsed.reason == "OUT_OF_STOCK"  # a Problem, parsed
