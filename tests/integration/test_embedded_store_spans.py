"""The embedded stack's traces reach its store: a call to a service on SQLite, over real mTLS, shows
each statement it ran (transaction included) as a span under the service's server span; a
statement SQLite refuses is an error span, without the values it was given."""

from __future__ import annotations

import sqlite3

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from harness.servers import PASSWORD
from observability.tracing import inject
from services.catalog.domain import Product, utcnow
from services.catalog.store.sqlite import SqliteCatalogStore
from shop.accounts.v1 import accounts_pb2 as pb
from tests.support.spans import store_spans, traced


def test_a_call_to_a_service_on_the_embedded_store_shows_its_statements_under_the_server_span(accounts, unique):
    edge, name = accounts(), unique("spanned")
    with traced() as spans:
        metadata: list[tuple[str, str]] = []
        inject(metadata)  # the test's trace context, as the edge sends it
        edge.CreateAccount(pb.CreateAccountRequest(username=name, email=f"{name}@example.com", password=PASSWORD),
                           metadata=metadata, timeout=10)
    [server] = [s for s in spans if s.kind == SpanKind.SERVER and s.name.endswith("/CreateAccount")]
    statements = [s for s in store_spans(spans) if s.parent.span_id == server.context.span_id]
    assert [s.name for s in statements] == ["BEGIN accounts.sqlite3", "INSERT accounts", "COMMIT accounts.sqlite3"]
    for span in statements:
        assert span.kind == SpanKind.CLIENT
        assert server.start_time <= span.start_time <= span.end_time <= server.end_time
        assert (span.attributes["db.system.name"], span.attributes["db.namespace"]) == ("sqlite", "accounts.sqlite3")
        assert name not in span.to_json() and PASSWORD not in span.to_json()
    assert statements[1].attributes["db.query.text"].startswith("INSERT INTO accounts (id, username")


def test_a_statement_sqlite_refuses_is_an_error_span_without_its_values(tmp_path):
    store = SqliteCatalogStore.open(str(tmp_path / "catalog.sqlite3"))
    now = utcnow()
    product = Product(id="dup-Wq42z", name="Mug Wq42z", description="", currency="EUR", price_minor=1250,
                      created_at=now, updated_at=now, stock=5)
    store.create_product(product)
    try:
        with traced() as spans, pytest.raises(sqlite3.IntegrityError):
            store.create_product(product)  # the same id again
    finally:
        store.close()
    [span] = store_spans(spans)
    assert span.name == "INSERT products"
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "sqlite3.IntegrityError"
    assert span.attributes["db.response.status_code"] == "SQLITE_CONSTRAINT_PRIMARYKEY"
    assert [event.name for event in span.events] == ["exception"]
    assert "Wq42z" not in span.to_json()
