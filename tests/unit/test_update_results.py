"""Updates cannot corrupt a product: a masked message field is checked whole by the declared rules
(runtime/validation.py), the catalog stores a price only whole, and stock stays within the bound
SetStock declares whatever adjustments add up to (services/catalog/service.py, real SQLite store)."""

from __future__ import annotations

import pytest
from google.protobuf import field_mask_pb2

from runtime.validation import declared_max, rules_of, violations
from services.catalog import domain
from services.catalog.service import STOCK_LIMIT, CatalogService
from services.catalog.store.sqlite import SqliteCatalogStore
from shop.catalog.v1 import catalog_pb2 as catalog

A = "0f8fad5b-d9cb-469f-a165-70867728950e"
HALF_A_PRICE = catalog.Product(price=catalog.Money(currency_code="EUR"))
MUG_PRICE = {"currency": "EUR", "price_minor": 1250}


def update(product: catalog.Product, *paths: str) -> catalog.UpdateProductRequest:
    return catalog.UpdateProductRequest(id=A, product=product, update_mask=field_mask_pb2.FieldMask(paths=paths))


@pytest.mark.parametrize("paths", [("price",), ()], ids=["masked", "no mask"])
def test_a_masked_message_field_is_checked_whole_with_its_required_fields(paths):
    assert violations(update(HALF_A_PRICE, *paths)) == [("product.price.amount_minor", "is required")]
    no_currency = catalog.Product(price=catalog.Money(amount_minor=5))
    assert violations(update(no_currency, *paths)) == [("product.price.currency_code", "is required")]


def test_a_masked_message_field_keeps_its_nested_rules_and_a_mask_cannot_name_a_part_of_it():
    negative = catalog.Product(price=catalog.Money(currency_code="EUR", amount_minor=-1))
    assert [path for path, _ in violations(update(negative, "price"))] == ["product.price.amount_minor"]
    assert [path for path, _ in violations(update(catalog.Product(), "price"))] == ["product.price"]
    part = violations(update(HALF_A_PRICE, "price.currency_code"))
    assert [path for path, _ in part] == ["update_mask"] and "unknown field 'price.currency_code'" in part[0][1]


@pytest.fixture
def products(tmp_path):
    store = SqliteCatalogStore.open(str(tmp_path / "catalog.sqlite3"))
    yield CatalogService(store), store
    store.close()


def test_the_catalog_stores_a_price_only_whole_even_for_a_caller_that_skipped_the_rules(products):
    service, _ = products
    made = service.create(name="Mug", description="", price=MUG_PRICE)
    with pytest.raises(domain.InvalidArgument) as refused:
        service.update(made.id, {"price": {"currency": "EUR", "price_minor": None}}, ["price"])
    assert refused.value.violations[0][0] == "product.price"
    assert (service.get(made.id).currency, service.get(made.id).price_minor) == ("EUR", 1250)


def test_the_stock_limit_is_the_bound_setstock_declares():
    quantity = catalog.SetStockRequest.DESCRIPTOR.fields_by_name["quantity"]
    assert STOCK_LIMIT == declared_max(quantity) == rules_of(quantity).max


def test_adjustments_cannot_add_up_past_the_stock_limit(products):
    service, _ = products
    made = service.create(name="Mug", description="", price=MUG_PRICE)
    service.set_stock(made.id, STOCK_LIMIT - 999_999_999)
    assert service.adjust_stock(made.id, 999_999_999).stock == STOCK_LIMIT  # up to the limit is fine
    with pytest.raises(domain.StockLimitExceeded) as refused:
        service.adjust_stock(made.id, 999_999_999)
    assert refused.value.violations == [("delta", f"would make stock exceed {STOCK_LIMIT}")]
    assert service.get(made.id).stock == STOCK_LIMIT
