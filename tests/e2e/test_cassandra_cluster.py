"""The shop on a three-node Cassandra (replication factor 3, LOCAL_QUORUM): one node stops in
the middle of a steady load of orders, sign-ins and token refreshes, and not one of them fails
(an order in flight on the killed node may be answered 503 after its saga compensated: the client
orders again, as the API tells it to), no order is oversold, none stays PENDING; and with a node still down, fifty racing orders for
ten units confirm exactly ten.

One cluster serves this module and is stopped when it ends (three JVMs are too heavy to keep
through the rest of the suite). The node-loss tests run in file order, so the last one leaves a
node down for the race; each test still makes the state it needs, whatever ran before it.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid

import pytest
import requests

from harness import servers
from harness.shop import (
    assert_exactly_ten_of_fifty,
    make_product,
    order_retrying_as_the_api_says,
    shopper,
    stock_of,
    wait_for,
)
from harness.stack import Stack
from tools.cassandra.launcher import CassandraCluster

pytestmark = pytest.mark.cassandra

LOAD_CLIENTS = 4            # threads placing orders through the edge, back to back
LOAD_SECONDS_BEFORE = 3.0   # steady load before a node stops
LOAD_SECONDS_AFTER = 8.0    # and after it is gone (longer if the scarce product has not run out yet)
SCARCE_STOCK = 6            # runs out during the load, so OUT_OF_STOCK refusals are part of it
PLENTY_STOCK = 100_000


@pytest.fixture(scope="module")
def cluster():
    with CassandraCluster(3) as running:
        yield running


@pytest.fixture(scope="module")
def cluster_stack(cluster, tmp_path_factory):
    """Every service on the cluster, two catalog replicas, each keyspace replicated three times."""
    store_env = {
        "STORE": "cassandra", "CASSANDRA_CONTACT_POINTS": cluster.contact_point,
        "CASSANDRA_KEYSPACE": f"t_{uuid.uuid4().hex[:12]}", "CASSANDRA_REPLICATION_FACTOR": "3",
        "CASSANDRA_CONSISTENCY": "local_quorum", "CASSANDRA_SERIAL_CONSISTENCY": "serial",
    }
    # Recovery may cancel only what no request can still be placing: older than the edge's 10 s deadline.
    stack = Stack(servers.write_test_pki(tmp_path_factory.mktemp("cluster-pki")), tmp_path_factory.mktemp("cluster-data"),
                  store_env=store_env, catalog_replicas=2, orders_env={"RECOVERY_AGE_SECONDS": "12"})
    yield stack
    stack.stop()


def _all_nodes_up(cluster) -> None:
    for index, node in enumerate(cluster.nodes):
        if not node.running:
            cluster.restart_node(index)


class OrderLoad:
    """Client threads ordering back to back through the edge until stopped; keeps every reply.

    Half the threads order a product that never runs out, half one that runs out early. A
    watcher reads the scarce product's stock meanwhile, and a customer signs in and refreshes
    the tokens it got (each a lightweight transaction in accounts): those must succeed too.
    """

    def __init__(self, stack, clients: int = LOAD_CLIENTS):
        self._stack = stack
        self.plenty, self.scarce = make_product(stack, PLENTY_STOCK, "Plenty"), make_product(stack, SCARCE_STOCK, "Scarce")
        self.tokens = [shopper(stack) for _ in range(clients)]
        self.replies: list[tuple[str, int, requests.Response | Exception]] = []
        self.retried: list[requests.Response] = []  # answers that made a client try again
        self.stock_seen: list[int | Exception] = []
        self._admin = stack.token(*stack.admin)["access_token"]
        self._member = f"member{uuid.uuid4().hex[:12]}"
        stack.register(self._member)
        self.sign_ins: list[requests.Response | Exception] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._orders, args=(i,)) for i in range(clients)]
        self._threads += [threading.Thread(target=self._watch_stock), threading.Thread(target=self._sign_in)]

    def _orders(self, i: int) -> None:
        """Orders back to back, each from a client that retries as the API says (a request in flight
        on a node that is killed may be answered 503 after its saga compensated; that client orders
        again). The final reply of each order is kept, and the 503s and 504s it saw on the way."""
        product, quantity = (self.plenty, 1 + i % 3) if i % 2 == 0 else (self.scarce, 1)
        while not self._stop.is_set():
            try:
                reply, earlier = order_retrying_as_the_api_says(self._stack, self.tokens[i], product, quantity)
                self.retried.extend(earlier)
            except requests.RequestException as error:
                reply = error
            self.replies.append((product, quantity, reply))

    def _watch_stock(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.stock_seen.append(stock_of(self._stack, self.scarce, self._admin))
            except (requests.RequestException, AssertionError) as error:  # a failed read is kept, and fails the test
                self.stock_seen.append(error)

    def _sign_in(self) -> None:
        """Signs in, then spends the refresh token (a sign-in counts and clears attempts, a refresh
        marks its token used: conditional updates whose coordinator may be the node that stops)."""
        while not self._stop.wait(0.25):
            try:
                reply = requests.post(f"{self._stack.url}/oauth2/token", timeout=10, data={
                    "grant_type": "password", "username": self._member, "password": servers.PASSWORD})
                self.sign_ins.append(reply)
                if reply.status_code == 200:
                    self.sign_ins.append(requests.post(f"{self._stack.url}/oauth2/token", timeout=10, data={
                        "grant_type": "refresh_token", "refresh_token": reply.json()["refresh_token"]}))
            except requests.RequestException as error:
                self.sign_ins.append(error)

    def wait_until_refused(self, timeout: float = 30) -> None:
        """Keeps the load on until the scarce product has been refused once (on a slow machine that takes longer)."""
        assert wait_for(lambda: any(not isinstance(r, Exception) and r.status_code == 409 for _, _, r in self.replies),
                         timeout), "the scarce product never ran out: the load did not reach the refusal path"

    def __enter__(self) -> OrderLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def _every_order(stack, token: str) -> list[dict]:
    """All of a customer's orders, following page tokens."""
    orders, page = [], ""
    while True:
        reply = requests.get(f"{stack.url}/v1/orders", params={"pageSize": 100, "pageToken": page},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert reply.status_code == 200, reply.text
        orders += reply.json().get("orders", [])
        page = reply.json().get("nextPageToken", "")
        if not page:
            return orders


def _describe(reply) -> str:
    return repr(reply) if isinstance(reply, Exception) else f"{reply.status_code} {reply.text[:300]}"


@pytest.mark.parametrize("node, sig", [(2, signal.SIGTERM), (0, signal.SIGKILL)], ids=["sigterm", "sigkill-seed"])
def test_stopping_one_node_under_load_fails_no_order_and_oversells_nothing(cluster, cluster_stack, node, sig):
    _all_nodes_up(cluster)
    stack = cluster_stack
    with OrderLoad(stack) as load:
        time.sleep(LOAD_SECONDS_BEFORE)
        cluster.stop_node(node, sig)
        stopped_at = len(load.replies)
        time.sleep(LOAD_SECONDS_AFTER)
        load.wait_until_refused()
    assert not cluster.nodes[node].running

    failed = [f"{quantity} x {product}: {_describe(r)}" for product, quantity, r in load.replies
              if isinstance(r, Exception) or r.status_code not in (200, 409)]
    # A retry is an answer the API allows (503/504 with Retry-After, or a key still in use), never a 500.
    assert all(r.status_code in (409, 503, 504) and "Retry-After" in r.headers for r in load.retried), \
        [_describe(r) for r in load.retried[:5]]
    assert not failed, f"{len(failed)} of {len(load.replies)} orders failed:\n" + "\n".join(failed[:20])
    refused = [r for _, _, r in load.replies if r.status_code == 409]
    assert all(r.json()["reason"] == "OUT_OF_STOCK" for r in refused), [r.text for r in refused[:5]]
    assert {p for p, _, r in load.replies if r.status_code == 409} <= {load.scarce}
    assert len(load.replies) > stopped_at, "no order was placed after the node stopped"
    assert not [s for s in load.stock_seen if isinstance(s, Exception) or s < 0], load.stock_seen
    refused_sign_ins = [_describe(r) for r in load.sign_ins if isinstance(r, Exception) or r.status_code != 200]
    assert load.sign_ins and not refused_sign_ins, f"{len(refused_sign_ins)} of {len(load.sign_ins)}: {refused_sign_ins[:5]}"

    acknowledged = {r.json()["id"] for _, _, r in load.replies if r.status_code == 200}
    assert all(r.json()["status"] == "CONFIRMED" for _, _, r in load.replies if r.status_code == 200)
    assert wait_for(lambda: not [o for t in load.tokens for o in _every_order(stack, t) if o["status"] == "PENDING"])
    orders = [o for t in load.tokens for o in _every_order(stack, t)]
    confirmed = {o["id"]: o for o in orders if o["status"] == "CONFIRMED"}
    assert set(confirmed) == acknowledged, "the confirmed orders are not exactly the acknowledged ones"
    for product, initial in ((load.plenty, PLENTY_STOCK), (load.scarce, SCARCE_STOCK)):
        units = sum(int(item["quantity"]) for o in confirmed.values() for item in o["items"] if item["productId"] == product)
        assert units == initial - stock_of(stack, product), f"stock of {product} does not add up"
    assert stock_of(stack, load.scarce) == 0


def test_fifty_concurrent_orders_for_ten_units_with_a_node_down_confirm_exactly_ten(cluster, cluster_stack):
    if all(node.running for node in cluster.nodes):
        cluster.stop_node(2)
    assert_exactly_ten_of_fifty(cluster_stack)
