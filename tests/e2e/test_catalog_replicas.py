"""Three catalog replicas behind one DNS name, under load through the edge: each takes its share,
one killed costs no read and no unclean refusal, and one added gets its share without restarting
any caller. Loose bounds; bench/replicas.py measures the same run with its figures
(docs/benchmarks.md)."""

from __future__ import annotations

import signal
import time
import uuid

import pytest
import requests

from harness import servers
from harness.shop import auth, make_product, shopper
from harness.stack import CallsPerReplica, Stack
from tests.support.load import Load

REPLICAS = 3
LOOSE = 0.25  # each replica's share within 25 % of an equal one (the benchmark measures under 1 %)


@pytest.fixture
def stack(tmp_path):
    running = Stack(servers.write_test_pki(tmp_path / "pki"), tmp_path, catalog_replicas=REPLICAS, metrics=True, dns=True)
    yield running
    running.stop()


def _reads_and_orders(stack, product_id: str, token: str):
    """Product reads (the edge calls catalog) and orders (orders calls catalog), in turn."""
    def request(n: int) -> requests.Response:
        if n % 2:
            return requests.get(f"{stack.url}/v1/products/{product_id}", headers=auth(token), timeout=30)
        return requests.post(f"{stack.url}/v1/orders", timeout=30, json={"items": [{"productId": product_id, "quantity": 1}]},
                             headers=auth(token, **{"Idempotency-Key": uuid.uuid4().hex}))
    return request


def _shared(seen: dict[str, float]) -> bool:
    total, equal = sum(seen.values()), 1 / len(seen)
    return total >= 100 and all(abs(count / total - equal) <= LOOSE * equal for count in seen.values())


def _assert_shared(seen: dict[str, float]) -> None:
    assert _shared(seen), f"calls per replica: {seen}"


def test_replicas_share_load_lose_one_and_gain_one_under_load(stack):
    product_id, token = make_product(stack, 1_000_000), shopper(stack)
    calls = CallsPerReplica(stack, "catalog", "CatalogService")
    with Load(_reads_and_orders(stack, product_id, token), threads=4, max_seconds=180) as load:
        load.wait_for(40)  # every caller has its connections
        calls.since_last()
        load.wait_for(200)
        _assert_shared(calls.since_last())

        killed = stack.catalogs[-1]
        killed.stop(signal.SIGKILL)  # calls in flight on it are cut; its address stays in the name a while
        load.wait_for(100)
        stack.withdraw("catalog", killed)
        load.wait_for(100)
        _assert_shared(calls.since_last())  # the two left share it

        added = stack.add_replica("catalog")
        # Callers resolve the name again when a connection of theirs reaches its age (10 s by default).
        deadline = time.monotonic() + 25
        while servers.calls_answered(added, "CatalogService") == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert servers.calls_answered(added, "CatalogService") > 0, "the added replica got no call in 25 s"
        # Each caller finds it when one of its connections reaches its age: look at windows of 150
        # requests until all have (bounded), then it must keep its share.
        calls.since_last()
        deadline, windows = time.monotonic() + 30, []
        while time.monotonic() < deadline and not (windows and _shared(windows[-1])):
            load.wait_for(150)
            windows.append(calls.since_last())
        assert windows and _shared(windows[-1]), f"calls per replica, window by window: {windows}"
        load.wait_for(300)
        _assert_shared(calls.since_last())
    stack.processes["catalog"].remove(killed)  # it was killed on purpose: not stopped again

    reads = [status for _, what, status in load.outcomes if what.startswith("GET")]
    assert len(reads) >= 300 and set(reads) == {200}, "reads are retried on another replica, never failed"
    # An order whose ReserveStock was cut on the killed replica is refused cleanly (and its stock given back).
    assert all(status == 503 for what, status in load.failures() if what.startswith("POST")), load.failures()
