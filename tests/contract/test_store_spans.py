"""Store statements as spans, on both adapters: one CLIENT span per statement, named and described
by OpenTelemetry's database conventions, holding no value a statement was given, and none at all
for housekeeping under `untraced()`."""

from __future__ import annotations

import uuid
from typing import NamedTuple

import pytest
from opentelemetry.trace import SpanKind

from observability.tracing import untraced
from services.catalog.domain import Product, utcnow
from tests.support.spans import everything, store_spans, traced
from tests.support.stores import ADAPTERS, open_adapter

# Values no span may hold: the test looks for each in every span's JSON.
SECRET_ID, SECRET_NAME, SECRET_TEXT, SECRET_PRICE = "p-Zx81q-id", "Teapot Zx81q", "Zx81q-described", 987654321


class Opened(NamedTuple):
    store: object
    system: str  # the db.system.name its spans must say
    namespace: str  # and their db.namespace: the keyspace, or the SQLite file's name


@pytest.fixture(params=ADAPTERS)
def catalog(request, tmp_path):
    store = open_adapter(request, tmp_path, "catalog", "SqliteCatalogStore", "CassandraCatalogStore")
    yield Opened(store, request.param, getattr(store, "_keyspace", "catalog.sqlite3"))
    store.close()


def _product(product_id: str | None = None) -> Product:
    now = utcnow()
    return Product(id=product_id or str(uuid.uuid4()), name="Mug", description="", currency="EUR", price_minor=1250,
                   created_at=now, updated_at=now, stock=5)


def test_a_read_is_a_client_span_named_for_its_operation_and_table(catalog):
    made = _product()
    catalog.store.create_product(made)
    with traced() as spans:
        assert catalog.store.get_product(made.id) == made
    test_span = spans[-1]
    [read] = [s for s in store_spans(spans) if s.name == "SELECT products"]
    assert read.kind == SpanKind.CLIENT
    assert read.parent.span_id == test_span.context.span_id
    attributes = dict(read.attributes)
    assert {key: attributes.pop(key) for key in ("db.system.name", "db.system", "db.namespace", "db.operation.name",
                                                 "db.collection.name", "db.response.returned_rows")} == {
        "db.system.name": catalog.system, "db.system": catalog.system, "db.namespace": catalog.namespace,
        "db.operation.name": "SELECT", "db.collection.name": "products", "db.response.returned_rows": 1}
    text = attributes.pop("db.query.text")
    assert text.startswith("SELECT ") and "products WHERE id = ?" in text and made.id not in text
    if catalog.system == "cassandra":
        assert f"FROM {catalog.namespace}.products" in text, "the statement names its keyspace"
        assert attributes.pop("cassandra.consistency.level") == "LOCAL_QUORUM"
        assert attributes.pop("server.address") == "127.0.0.1" and isinstance(attributes.pop("server.port"), int)
        assert attributes.pop("cassandra.coordinator.dc")
    assert attributes == {}, "no attribute beyond the conventions' ones"


def test_every_statement_of_a_call_gets_its_own_span_inside_the_call(catalog):
    made = _product()
    with traced() as spans:
        catalog.store.create_product(made)
        catalog.store.set_stock(made.id, 7)
    test_span = spans[-1]
    statements = store_spans(spans)
    assert len(statements) >= 2
    for span in statements:
        assert span.parent.span_id == test_span.context.span_id
        assert test_span.start_time <= span.start_time <= span.end_time <= test_span.end_time
        assert span.name == f"{span.attributes['db.operation.name']} {span.attributes.get('db.collection.name', catalog.namespace)}"
    assert "INSERT products" in [s.name for s in statements]


def test_no_value_given_to_a_statement_reaches_a_span(catalog):
    now = utcnow()
    secret = Product(id=SECRET_ID, name=SECRET_NAME, description=SECRET_TEXT, currency="EUR", price_minor=SECRET_PRICE,
                     created_at=now, updated_at=now, stock=3)
    with traced() as spans:
        catalog.store.create_product(secret)
        assert catalog.store.get_product(SECRET_ID).name == SECRET_NAME
        catalog.store.list_products(10, None, "Zx81q")
        catalog.store.save_product(secret)
        catalog.store.set_stock(SECRET_ID, 4)
    assert len(store_spans(spans)) >= 5
    for span in spans:
        recorded = span.to_json().lower()  # the search pattern goes to SQLite in lower case
        for value in (SECRET_ID, SECRET_NAME, SECRET_TEXT, str(SECRET_PRICE), "Zx81q"):
            assert value.lower() not in recorded, (span.name, value)


def test_housekeeping_under_untraced_makes_no_store_span(catalog):
    made = _product()
    catalog.store.create_product(made)
    with traced() as seen:
        catalog.store.get_product(made.id)
    assert store_spans(seen), "the same statement makes a span when traced"
    with everything() as spans, untraced():
        catalog.store.ping()
        catalog.store.get_product(made.id)
        catalog.store.set_stock(made.id, 2)
    assert store_spans(spans) == []
