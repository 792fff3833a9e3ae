"""Cassandra statement spans on a real Cassandra: a span lasts as long as Cassandra takes to answer
(the statement's start to its result, not to its submission), a refused statement is an error
span without its values, a lightweight transaction's span says whether it applied, what the
spans count shows a hot product's reservations sharing conditional batches, and what a product's
read selects."""

from __future__ import annotations

import time
import uuid

import pytest
from cassandra import InvalidRequest
from cassandra.query import BatchStatement, BatchType
from opentelemetry.trace import SpanKind, StatusCode

from harness.concurrency import race
from runtime import cassandra as cql
from services.catalog.domain import RESERVED, Product, utcnow
from services.catalog.store.cassandra import CassandraCatalogStore
from tests.support.spans import everything, store_spans, traced

pytestmark = pytest.mark.cassandra

FLOOR_S = 0.1  # the slow statement takes at least this long, and so must its span
SLOW_ENOUGH_S = 2 * FLOOR_S  # what the partition grows until a count takes, to keep clear of the floor
EPSILON_S = 0.025  # our own work around the span, and a few GIL switches (5 ms each) on a busy machine
_ROWS_PER_STEP, _MAX_ROWS, _BATCH = 100_000, 1_000_000, 5_000
_WIDE_SCHEMA = ["CREATE TABLE IF NOT EXISTS wide_rows (bucket int, seq int, pad text, PRIMARY KEY (bucket, seq))"]
_WIDE_STATEMENTS = {"count": cql.read("SELECT count(*) FROM wide_rows WHERE bucket = ?"),
                    "add": cql.write("INSERT INTO wide_rows (bucket, seq, pad) VALUES (?, ?, 'x')")}


class WideRows(cql.CassandraStore):
    """One partition of many rows, counted: a statement Cassandra itself takes long over (it reads
    every row of the partition before it answers with one number)."""

    SCHEMA = _WIDE_SCHEMA
    STATEMENTS = _WIDE_STATEMENTS
    rows = 0

    def count(self, bucket: int) -> int:
        return self._run("count", bucket).one()[0]

    def grow(self, bucket: int, rows: int) -> None:
        """Adds rows to the partition, untraced: single-partition batches, one mutation each."""
        for first in range(self.rows, self.rows + rows, _BATCH):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for seq in range(first, first + _BATCH):
                batch.add(self._q["add"], (bucket, seq))
            self._session.execute(batch, timeout=60)
        self.rows += rows


@pytest.fixture(scope="module")
def wide(cassandra_settings):
    store = WideRows.connect(cassandra_settings())

    def took() -> float:
        began = time.perf_counter()
        assert store.count(0) == store.rows
        return time.perf_counter() - began

    # Grow until Cassandra takes twice the floor to count (the quickest of two), whatever the machine.
    while store.rows < _MAX_ROWS:
        store.grow(0, _ROWS_PER_STEP)
        if min(took(), took()) >= SLOW_ENOUGH_S:
            break
    yield store
    store.close()


@pytest.fixture(scope="module")
def catalog(cassandra_settings):
    store = CassandraCatalogStore.connect(cassandra_settings())
    yield store
    store.close()


def _product(stock: int = 5) -> Product:
    now = utcnow()
    return Product(id=str(uuid.uuid4()), name="Mug", description="", currency="EUR", price_minor=1250,
                   created_at=now, updated_at=now, stock=stock)


def test_a_statement_span_lasts_until_cassandra_answers_not_until_it_is_sent(wide):
    with traced() as spans:
        began = time.perf_counter()
        assert wide.count(0) == wide.rows
        took = time.perf_counter() - began
    [span] = [s for s in spans if s.kind == SpanKind.CLIENT]
    lasted = (span.end_time - span.start_time) / 1e9
    assert lasted >= took - EPSILON_S, f"the span lasted {lasted * 1000:.1f} ms of a {took * 1000:.1f} ms call"
    assert lasted >= FLOOR_S, f"the span lasted {lasted * 1000:.1f} ms; Cassandra took {took * 1000:.1f} ms"


def test_a_statement_cassandra_refuses_is_an_error_span_without_its_values(catalog):
    key = "refused-Qv93k" + "k" * 70_000  # longer than any partition key Cassandra takes (64 KiB)
    with traced() as spans, pytest.raises(InvalidRequest):
        catalog.get_product(key)
    [span] = store_spans(spans)
    assert span.name == "SELECT products"
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "cassandra.InvalidRequest"
    assert [event.name for event in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"] == "cassandra.InvalidRequest"
    assert "Qv93k" not in span.to_json()


def test_a_lightweight_transaction_span_says_whether_it_applied(catalog):
    made, reservation = _product(), str(uuid.uuid4())
    catalog.create_product(made)
    with traced() as spans:
        catalog.reserve(reservation, ((made.id, 2),))
        catalog.release(reservation)
    claims = [s for s in store_spans(spans) if s.name == "INSERT reservations"]
    # reserve claims the reservation id; release finds it claimed already
    assert [s.attributes["shop.lwt.applied"] for s in claims] == [True, False]
    assert all("shop.lwt.applied" not in s.attributes for s in store_spans(spans)
               if s.attributes["db.operation.name"] == "SELECT")


def test_a_batch_is_one_span_for_its_statements(catalog):
    made, reservation = _product(), str(uuid.uuid4())
    catalog.create_product(made)
    with traced() as spans:
        catalog.reserve(reservation, ((made.id, 2),))
    [batch] = [s for s in store_spans(spans) if s.name.startswith("BATCH")]
    assert batch.name == "BATCH UPDATE stock"  # the compare-and-set of the quantity and the hold it takes
    assert batch.attributes["db.operation.batch.size"] == 2
    assert batch.attributes["db.query.text"].count("; ") == 1 and batch.attributes["shop.lwt.applied"] is True
    assert made.id not in batch.to_json() and reservation not in batch.to_json()


def test_reservations_racing_on_one_product_share_conditional_batches(catalog):
    # runtime/turns.py: while one compare-and-set is on the product's stock row, the holds the other
    # threads queue go together in the next. Without the turns every reservation would be a batch of
    # its own (and most would lose a Paxos round or several to the others first).
    racers = 16
    made = _product(stock=racers)
    catalog.create_product(made)
    with everything() as spans:
        outcomes = race(racers, lambda i: catalog.reserve(str(uuid.uuid4()), ((made.id, 1),)).status)
    assert outcomes == [RESERVED] * racers and catalog.get_product(made.id).stock == 0
    written = [s for s in store_spans(spans) if s.name == "BATCH UPDATE stock" and s.attributes["shop.lwt.applied"]]
    holds = [s.attributes["db.operation.batch.size"] - 1 for s in written]  # each batch: the quantity's CAS + its holds
    assert sum(holds) == racers
    assert len(written) < racers and max(holds) > 1, f"holds per conditional batch: {holds}"


def test_reading_a_product_reads_its_quantity_not_the_holds_beside_it(catalog):
    # Every reservation leaves a hold in the stock row for 90 days (a cancellation's refund): a read that
    # carried them would grow with every order of the product. Only a stock change needs them.
    made = _product(stock=10)
    catalog.create_product(made)
    for _ in range(3):
        catalog.reserve(str(uuid.uuid4()), ((made.id, 1),))
    with traced() as spans:
        assert catalog.get_product(made.id).stock == 7
        assert catalog.get_products([made.id])[made.id].stock == 7
        page, _ = catalog.list_products(1000, None, made.name)
        assert {p.id: p.stock for p in page}[made.id] == 7
    stock_reads = [s.attributes["db.query.text"] for s in store_spans(spans) if s.name == "SELECT stock"]
    assert len(stock_reads) >= 3
    assert all("holds" not in text for text in stock_reads), stock_reads
