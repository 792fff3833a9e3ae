"""Only a CONFIRMED order is ever acknowledged, whatever a retry with the same Idempotency-Key meets:
accounts, orders and the edge as real processes over mTLS, and a catalog server in this process on
the same store as the stack's catalog, whose reservations the test can hold or fail.

While the first request is held inside its saga, a retry waits for its outcome no longer than the
retry's own deadline and then answers a retryable error, never the PENDING order; once the first
request is done, a retry answers its outcome; a first request that failed is answered with its
error again, not with its cancelled order."""

from __future__ import annotations

import contextlib
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import jwt
import pytest
import requests

from harness import servers
from harness.shop import make_product, my_orders, order, shopper, stock_of
from harness.stack import Stack
from runtime.errors import details_of
from runtime.stores import StoreUnavailable
from services.catalog import server as catalog_server
from services.catalog import store as catalog_store
from services.orders.domain import Order, fingerprint, new_order_id, normalise_lines, utcnow
from services.orders.store.sqlite import SqliteOrderStore
from shop.orders.v1 import orders_pb2, orders_pb2_grpc

HELD_SECONDS = 60  # a bound for a broken test only: the gate opens when the test says so
RETRY_BUDGET = "6"  # seconds: longer than the fixed 5 s a retry used to wait before answering PENDING


class GatedStore:
    """The catalog's own store, except that reservations wait while the gate is shut, or fail as
    in a store outage while `outage` is set."""

    def __init__(self, store):
        self._store = store
        self._open = threading.Event()
        self._open.set()
        self.arrived = threading.Event()  # a reservation reached the store since the gate shut
        self.outage = False

    def __getattr__(self, name):
        return getattr(self._store, name)

    @contextlib.contextmanager
    def shut(self):
        """Holds every reservation until the block ends."""
        self.arrived.clear()
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def reserve(self, reservation_id, items):
        self.arrived.set()
        if self.outage:
            raise StoreUnavailable("disk I/O error (simulated outage)")
        assert self._open.wait(HELD_SECONDS), "the test never opened the gate"
        return self._store.reserve(reservation_id, items)


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """(stack, gate): the stack's orders service calls the gated catalog; its recovery pass leaves
    PENDING orders alone for ten minutes, so what a retry meets stays as the test made it."""
    tmp_path = tmp_path_factory.mktemp("ack")
    stack = Stack(servers.write_test_pki(tmp_path / "pki"), tmp_path)
    try:
        settings = catalog_server.CatalogSettings.from_env(stack.env("catalog"))  # the stack's catalog store
        gate = GatedStore(catalog_store.open_store(settings.server))
        with servers.in_process(functools.partial(catalog_server.create_server, store=gate), settings, stack.pki_dir) as port:
            stack.orders = stack.restart("orders", stack.orders, CATALOG_TARGET=f"127.0.0.1:{port}",
                                         RECOVERY_AGE_SECONDS="600")
            yield stack, gate
    finally:
        stack.stop()


def _retry(stack, token, product_id, key: str, budget: str):
    return requests.post(f"{stack.url}/v1/orders", timeout=60, json={"items": [{"productId": product_id, "quantity": "1"}]},
                         headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key, "Request-Timeout": budget})


def test_a_retry_while_the_first_request_is_held_answers_504_at_its_deadline_never_pending(gated):
    stack, gate = gated
    product_id, token = make_product(stack, 5), shopper(stack)
    with ThreadPoolExecutor(1) as pool:
        with gate.shut():
            first = pool.submit(order, stack, token, product_id, 1, "held-1", 60)
            assert gate.arrived.wait(HELD_SECONDS), "the first request never reached its reservation"
            retry = _retry(stack, token, product_id, "held-1", RETRY_BUDGET)
            assert not first.done(), "the retry answered only after the first request was let go"
        assert retry.status_code == 504, retry.text[:300]
        assert retry.json()["code"] == "DEADLINE_EXCEEDED" and retry.headers["Retry-After"] == "1"
        placed = first.result(HELD_SECONDS)
    assert placed.status_code == 200 and placed.json()["status"] == "CONFIRMED", placed.text[:300]
    again = _retry(stack, token, product_id, "held-1", "10")
    assert again.status_code == 200 and again.json()["id"] == placed.json()["id"]
    assert again.json()["status"] == "CONFIRMED" and stock_of(stack, product_id) == 4


def test_a_retry_for_a_first_request_that_died_midway_is_told_to_retry_not_given_the_pending_order(gated):
    """The first request recorded its order and died (recovery has not run yet). A caller with time
    to spare is told to retry (ABORTED, 409 with Retry-After at the edge) when the service's own
    budget for the wait runs out; a caller whose deadline runs out gets DEADLINE_EXCEEDED (504)."""
    stack, _ = gated
    product_id, token = make_product(stack, 5), shopper(stack)
    _record_pending_order(stack, token, product_id, "died-1")
    request = orders_pb2.CreateOrderRequest(items=[orders_pb2.OrderItem(product_id=product_id, quantity=1)],
                                            idempotency_key="died-1")
    with servers.channel(stack.pki_dir, stack.orders.port, "edge") as ch, pytest.raises(grpc.RpcError) as told:
        orders_pb2_grpc.OrdersServiceStub(ch).CreateOrder(request, timeout=30, metadata=servers.bearer(token))
    assert told.value.code() == grpc.StatusCode.ABORTED, told.value.details()
    assert told.value.details() == "the first request with this Idempotency-Key is still being processed; retry"
    assert [d.reason for d in details_of(told.value) if hasattr(d, "reason")] == ["IDEMPOTENCY_KEY_IN_USE"]
    short = _retry(stack, token, product_id, "died-1", "1")
    assert short.status_code == 504 and short.json()["code"] == "DEADLINE_EXCEEDED", short.text[:300]
    assert [o["status"] for o in my_orders(stack, token)] == ["PENDING"] and stock_of(stack, product_id) == 5


def _record_pending_order(stack, token: str, product_id: str, key: str) -> None:
    """What a first request leaves when it dies right after recording its order: the key claimed
    and the order PENDING (written to the orders store directly, as that request would have)."""
    user = jwt.decode(token, options={"verify_signature": False})["sub"]
    lines, order_id, now = normalise_lines([(product_id, 1)]), new_order_id(), utcnow()
    store = SqliteOrderStore.open(stack.env("orders")["SQLITE_PATH"])
    try:
        store.claim_idempotency_key(user, key, order_id, fingerprint(lines))
        store.create_order(Order(id=order_id, user_id=user, lines=lines, status="PENDING", created_at=now, updated_at=now))
    finally:
        store.close()


def test_a_retry_after_an_outage_places_the_order_once_and_never_acknowledges_the_cancelled_attempt(gated):
    stack, gate = gated
    product_id, token = make_product(stack, 5), shopper(stack)
    gate.outage = True
    try:
        failed = order(stack, token, product_id, 1, key="outage-1")
    finally:
        gate.outage = False
    assert failed.status_code == 503, failed.text[:300]
    retry = order(stack, token, product_id, 1, key="outage-1")  # the outage is over: the same key again
    assert retry.status_code == 200 and retry.json()["status"] == "CONFIRMED", retry.text[:300]
    again = order(stack, token, product_id, 1, key="outage-1")
    assert again.status_code == 200 and again.json()["id"] == retry.json()["id"]
    assert sorted((o["status"], o["statusReason"]) for o in my_orders(stack, token)) == [
        ("CANCELLED", "dependency_failed"), ("CONFIRMED", "")]
    assert stock_of(stack, product_id) == 4
