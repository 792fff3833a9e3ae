"""The shop on a three-node Cassandra whose nodes are machines of their own (network namespaces on
a private bridge, harness/network.py), through a network partition: while sixteen clients order
several products through the edge, one node is cut off in both directions (its process keeps
running), later healed; then the node the orders service sends most of its requests to is cut
and healed.

Required: no unit oversold, no acknowledged order lost, every refusal a clean 503 with
Retry-After (never a 500 or a 504, never an answer later than the edge's deadline), and once healed,
every replica agrees: the stock and the orders read at consistency ALL through each node as
coordinator are the same, and they are what the acknowledged orders say.

The figures (orders placed and refused per phase, the longest time without a confirmed order,
how long the ring took to be whole again) are printed at the end (`make chaos` shows them) and
recorded in docs/cassandra.md.
"""

from __future__ import annotations

import collections
import subprocess
import threading
import time
import uuid

import pytest
import requests

from harness import servers
from harness.network import PrivateNetwork
from harness.shop import make_product, order_retrying_as_the_api_says, shopper, stock_of, wait_for
from harness.stack import Stack
from tools.cassandra.launcher import CassandraCluster

pytestmark = pytest.mark.cassandra

CLIENTS = 16
STOCK = {"Plenty A": 100_000, "Plenty B": 100_000, "Scarce A": 40, "Scarce B": 40}
WARM_SECONDS = 4.0      # load before the first cut (and to learn which node orders prefers)
CUT_SECONDS = 12.0      # each node stays cut this long, its process running
AFTER_SECONDS = 4.0     # load after each heal
EDGE_DEADLINE = 10.0    # the edge's default EDGE_DEADLINE_SECONDS
LATE = EDGE_DEADLINE + 2.0  # no answer may come later than the deadline (and a little scheduling)


@pytest.fixture(scope="module")
def network():
    with PrivateNetwork(3) as net:
        yield net


@pytest.fixture(scope="module")
def cluster(network):
    with CassandraCluster(3, network=network) as running:
        yield running


@pytest.fixture(scope="module")
def stack(cluster, tmp_path_factory):
    keyspace = f"t_{uuid.uuid4().hex[:12]}"
    store_env = {
        "STORE": "cassandra", "CASSANDRA_CONTACT_POINTS": cluster.contact_point, "CASSANDRA_KEYSPACE": keyspace,
        "CASSANDRA_REPLICATION_FACTOR": "3", "CASSANDRA_CONSISTENCY": "local_quorum",
        "CASSANDRA_SERIAL_CONSISTENCY": "serial",
    }
    running = Stack(servers.write_test_pki(tmp_path_factory.mktemp("partition-pki")),
                    tmp_path_factory.mktemp("partition-data"), store_env=store_env, catalog_replicas=2,
                    orders_env={"RECOVERY_AGE_SECONDS": "12"})
    running.keyspace = keyspace  # each service adds its name: <keyspace>_catalog, <keyspace>_orders
    yield running
    running.stop()


class Orders:
    """CLIENTS threads ordering back to back through the edge, each retrying as the API says; every
    answer is kept with the phase it was sent in."""

    def __init__(self, stack):
        self._stack = stack
        self.products = {name: make_product(stack, stock, name) for name, stock in STOCK.items()}
        self.tokens = [shopper(stack) for _ in range(CLIENTS)]
        self.phase = "warm"
        self.final: list[tuple[str, str, int, requests.Response | Exception]] = []  # phase, product, quantity, reply
        self.refusals: list[tuple[str, requests.Response]] = []  # phase, an answer that made the client retry
        self.confirmed_at: list[float] = []
        self.journal: list[tuple[str, requests.Response]] = []  # (Idempotency-Key, reply) of every request sent
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._order, args=(i,)) for i in range(CLIENTS)]

    def _order(self, i: int) -> None:
        names = list(self.products)
        n = 0
        while not self._stop.is_set():
            name = names[(i + n) % len(names)]
            n += 1
            product, quantity, phase = self.products[name], 1 + (i + n) % 3, self.phase
            try:
                reply, earlier = order_retrying_as_the_api_says(self._stack, self.tokens[i], product, quantity,
                                                                journal=self.journal)
            except requests.RequestException as error:
                reply, earlier = error, []
            self.refusals += [(phase, r) for r in earlier]
            self.final.append((phase, product, quantity, reply))
            if not isinstance(reply, Exception) and reply.status_code == 200:
                self.confirmed_at.append(time.monotonic())

    def __enter__(self) -> Orders:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)


def _session(cluster, node: int):
    """A driver session whose every request is coordinated by `node`."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([cluster.hosts[node]]),
                               request_timeout=20)
    client = Cluster([cluster.hosts[node]], port=cluster.port, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    return client, client.connect()


def _orders_connections(stack, cluster) -> set[int]:
    """The local ports of the orders service's connections to Cassandra (`ss`, by the process's PID)."""
    listing = subprocess.run(["ss", "-Htnp", "state", "established", f"dport = :{cluster.port}"],
                             capture_output=True, text=True, check=True).stdout
    pid = f"pid={stack.orders.process.pid},"
    return {int(line.split()[2].rsplit(":", 1)[1]) for line in listing.splitlines() if pid in line}


def _preferred_node(stack, cluster) -> tuple[int, list[int]]:
    """The node that has coordinated most of the orders service's requests (Cassandra's own count,
    system_views.clients, for the orders process's connections), and the counts per node."""
    ports = _orders_connections(stack, cluster)
    counts = []
    for node in range(len(cluster.hosts)):
        client, session = _session(cluster, node)
        try:
            rows = session.execute("SELECT port, request_count FROM system_views.clients")
            counts.append(sum(row.request_count for row in rows if row.port in ports))
        finally:
            client.shutdown()
    return max(range(len(counts)), key=counts.__getitem__), counts


def _cut_and_heal(network, cluster, orders: Orders, node: int, name: str) -> dict:
    """Cuts `node` for CUT_SECONDS under the load, heals it, and measures the ring's way back."""
    orders.phase = f"{name} cut"
    cut_at = time.monotonic()
    network.cut(node)
    time.sleep(CUT_SECONDS)
    orders.phase = f"{name} healed"
    network.heal(node)
    healed_at = time.monotonic()
    cluster.wait_for_ring(120)  # every node coordinates a write at ALL again
    ring_back = time.monotonic() - healed_at
    time.sleep(AFTER_SECONDS)
    confirmed = sorted(t for t in orders.confirmed_at if t >= cut_at - 1)
    gaps = [b - a for a, b in zip([cut_at, *confirmed], confirmed, strict=False)]
    return {"node": node, "ring whole again after heal (s)": round(ring_back, 1),
            "longest time without a confirmed order (s)": round(max(gaps, default=0.0), 1)}


def _logged(stack, reply) -> str:
    """The lines each process of the stack logged about the request a reply answers (by its request id)."""
    request_id = reply.headers.get("X-Request-Id", "-")
    found = [f"  {name}: {line.strip()[:400]}" for name, processes in [*stack.processes.items(), ("edge", [stack.edge])]
             for process in processes for line in process.lines if request_id in line]
    return f"{request_id} ({reply.elapsed.total_seconds():.2f} s):\n" + "\n".join(found)


def _story_of(stack, cluster, orders: Orders, order_ids: set[str]) -> str:
    """For orders confirmed without their client being told: each order as the orders service has it,
    the Idempotency-Key it was placed under, every request sent with that key, and what the
    processes logged about the order and those requests."""
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement

    client, session = _session(cluster, 0)
    try:
        claims = {str(row.order_id): row.key for row in session.execute(SimpleStatement(
            f"SELECT key, order_id FROM {stack.keyspace}_orders.idempotency_keys", consistency_level=ConsistencyLevel.ALL))}
    finally:
        client.shutdown()
    stories = []
    for order_id in sorted(order_ids):
        key = claims.get(order_id, "?")
        sent = [reply for k, reply in orders.journal if k == key]
        stories.append(f"order {order_id} under key {key}, {len(sent)} requests with that key:\n" + "\n".join(
            f"- {_describe(reply)}\n{_logged(stack, reply)}" for reply in sent) + "\n" + "\n".join(
            f"  {name}: {line.strip()[:400]}" for name, processes in stack.processes.items()
            for process in processes for line in process.lines if order_id in line))
    return "\n".join(stories)


def _describe(reply) -> str:
    return repr(reply) if isinstance(reply, Exception) else f"{reply.status_code} {reply.text[:300]}"


def _read_at_all(cluster, keyspace: str, node: int, product_ids) -> tuple[dict, dict]:
    """(stock per product, status per order) read at ALL with `node` as the coordinator."""
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement

    client, session = _session(cluster, node)
    try:
        at_all = lambda cql: SimpleStatement(cql, consistency_level=ConsistencyLevel.ALL, fetch_size=500)  # noqa: E731
        stock = {row.product_id: row.quantity for row in session.execute(
            at_all(f"SELECT product_id, quantity FROM {keyspace}_catalog.stock")) if row.product_id in product_ids}
        statuses = {str(row.id): row.status for row in session.execute(
            at_all(f"SELECT id, status FROM {keyspace}_orders.orders"))}
        return stock, statuses
    finally:
        client.shutdown()


def test_a_partitioned_node_oversells_nothing_loses_nothing_and_refuses_cleanly(network, cluster, stack):
    figures: dict[str, object] = {}
    with Orders(stack) as orders:
        time.sleep(WARM_SECONDS)
        preferred, counts = _preferred_node(stack, cluster)
        figures["orders' requests per node before the cuts"] = counts
        other = next(i for i in range(len(cluster.hosts)) if i != preferred)
        figures["first cut"] = _cut_and_heal(network, cluster, orders, other, "first")
        figures["second cut (orders' preferred node)"] = _cut_and_heal(network, cluster, orders, preferred, "second")
    phases = collections.Counter()
    for phase, _, _, reply in orders.final:
        phases[(phase, "confirmed" if not isinstance(reply, Exception) and reply.status_code == 200 else "out of stock")] += 1
    for phase, r in orders.refusals:
        phases[(phase, f"{r.status_code}, then retried")] += 1
    figures["answers per phase"] = dict(sorted((f"{p}: {kind}", n) for (p, kind), n in phases.items()))
    print("\npartition figures:", *(f"  {k}: {v}" for k, v in figures.items()), sep="\n")

    # Every final answer is a confirmation or a clean out-of-stock; every refusal on the way a clean
    # 503 with Retry-After (an order key still in use, 409 with Retry-After, is a wait, not a refusal).
    failed = [f"{phase}: {_describe(r)}" for phase, _, _, r in orders.final
              if isinstance(r, Exception) or r.status_code not in (200, 409)]
    assert not failed, f"{len(failed)} of {len(orders.final)} orders failed:\n" + "\n".join(failed[:20])
    out_of_stock = [r for _, _, _, r in orders.final if r.status_code == 409]
    assert all(r.json()["reason"] == "OUT_OF_STOCK" for r in out_of_stock), [r.text for r in out_of_stock[:5]]
    # A 504 would mean orders did not answer within the edge's deadline: the services must have
    # stopped, given back what they held and answered 503 before it.
    unclean = [f"{phase}: {_describe(r)}" for phase, r in orders.refusals
               if r.headers.get("Content-Type") != "application/problem+json" or "Retry-After" not in r.headers
               or not (r.status_code == 503 or (r.status_code == 409 and r.json()["reason"] == "IDEMPOTENCY_KEY_IN_USE"))]
    assert not unclean, f"{len(unclean)} unclean refusals:\n" + "\n".join(unclean[:20]) + "\nwhat the processes logged:\n" + \
        "\n".join(_logged(stack, r) for phase, r in orders.refusals if f"{phase}: {_describe(r)}" in unclean[:5])
    answers = [r for *_, r in orders.final] + [r for _, r in orders.refusals]
    late = [f"{r.elapsed.total_seconds():.1f}s {_describe(r)}" for r in answers if r.elapsed.total_seconds() > LATE]
    assert not late, "answers later than the deadline:\n" + "\n".join(late[:20])
    assert {p for p, *_ in orders.final if p.endswith("cut")} == {"first cut", "second cut"}, \
        "no order was placed while a node was cut"

    # Nothing lost, nothing oversold: the confirmed orders are exactly the acknowledged ones, and
    # each product's stock is its initial stock less the units they hold.
    acknowledged = {r.json()["id"] for *_, r in orders.final if r.status_code == 200}
    admin = stack.token(*stack.admin)["access_token"]
    assert wait_for(lambda: not [o for o in _every_order(stack, orders.tokens) if o["status"] == "PENDING"], 60)
    confirmed = {o["id"]: o for o in _every_order(stack, orders.tokens) if o["status"] == "CONFIRMED"}
    assert set(confirmed) == acknowledged, _story_of(stack, cluster, orders, set(confirmed) - acknowledged) + \
        f"\nnever confirmed though acknowledged: {acknowledged - set(confirmed)}"
    expected_stock = {}
    for name, product in orders.products.items():
        units = sum(int(item["quantity"]) for o in confirmed.values() for item in o["items"] if item["productId"] == product)
        expected_stock[product] = STOCK[name] - units
        assert expected_stock[product] >= 0, f"{name} oversold by {-expected_stock[product]}"
        assert stock_of(stack, product, admin) == expected_stock[product], f"the stock of {name} does not add up"
    assert all(expected_stock[orders.products[name]] == 0 for name in ("Scarce A", "Scarce B")), \
        "the scarce products did not run out: the load never reached the out-of-stock path"

    # Every replica agrees: read at ALL through each node, the same stock and orders, the ones above.
    reads = [_read_at_all(cluster, stack.keyspace, node, set(orders.products.values())) for node in range(len(cluster.hosts))]
    for node, (stock, statuses) in enumerate(reads):
        assert stock == expected_stock, f"node {node} reads another stock: {stock} != {expected_stock}"
        assert {i for i, s in statuses.items() if s == "CONFIRMED"} == set(confirmed), f"node {node} reads other orders"
        assert statuses == reads[0][1], f"node {node} and node 0 read different order statuses"


def _every_order(stack, tokens) -> list[dict]:
    """All the customers' orders, following page tokens."""
    orders = []
    for token in tokens:
        page = ""
        while True:
            reply = requests.get(f"{stack.url}/v1/orders", params={"pageSize": 100, "pageToken": page},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert reply.status_code == 200, reply.text
            orders += reply.json().get("orders", [])
            page = reply.json().get("nextPageToken", "")
            if not page:
                break
    return orders
