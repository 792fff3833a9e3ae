"""One order, seen through telemetry: one trace from the edge down to Cassandra, RED metrics that
count it, and JSON logs that carry its trace id and none of its secrets."""

from __future__ import annotations

import json
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import servers
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.shop import make_product, shopper
from tests.support.stack import Stack

pytestmark = pytest.mark.cassandra
SERVER, CLIENT = 2, 3  # OTLP span kinds


@pytest.fixture(scope="module")
def observed(tmp_path_factory, cassandra_settings):
    """The whole system on Cassandra, exporting spans to a receiver of our own and serving metrics."""
    tmp = tmp_path_factory.mktemp("observed")
    with OtlpReceiver() as receiver:
        telemetry = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                     "OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_BSP_SCHEDULE_DELAY": "100"}
        stack = Stack(servers.write_test_pki(tmp / "pki"), tmp, store_env=servers.cassandra_env(cassandra_settings()),
                      telemetry_env=telemetry, metrics=True)
        try:
            product_id, token = make_product(stack, 20), shopper(stack)
            reply = requests.post(f"{stack.url}/v1/orders", timeout=30, json={
                "items": [{"productId": product_id, "quantity": "1"}]},
                headers={"Authorization": f"Bearer {token}", "X-Request-Id": "observed-order-1"})
            assert reply.status_code == 200, reply.text
            bad = requests.post(f"{stack.url}/v1/orders", timeout=30, json={"items": [{"productId": product_id, "quantity": "1001"}]},
                                headers={"Authorization": f"Bearer {token}", "X-Request-Id": "observed-bad-order"})
            assert bad.status_code == 400, bad.text
            yield stack, receiver, token
        finally:
            stack.stop()


def _json_lines(process) -> list[dict]:
    parsed = []
    for line in process.lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            continue  # gunicorn's own start-up lines are plain text
    return parsed


def _order_trace_id(stack, request_id: str = "observed-order-1") -> str:
    """The trace id in the edge's access log line for the request (read from the edge's stdout,
    which reaches us a moment after the response does)."""
    deadline = time.monotonic() + 10
    while True:
        access = [e for e in _json_lines(stack.edge) if e.get("request_id") == request_id and e["logger"] == "edge.access"]
        if access or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert access and access[0]["trace_id"], "the edge's access log line carries the trace id"
    return access[0]["trace_id"]


def _ancestors(span, by_id):
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def test_one_order_is_one_trace_from_the_edge_to_cassandra(observed):
    stack, receiver, _ = observed
    trace_id = _order_trace_id(stack)

    def complete():
        """Every service's server span has arrived, and every span's parent too (each process exports
        in batches of its own, so a child may arrive before its parent)."""
        spans = receiver.trace(trace_id)
        ids = {s.span_id for s in spans}
        services = {(s.service, s.kind) for s in spans}
        return ({("edge", SERVER), ("orders", SERVER), ("accounts", SERVER), ("catalog", SERVER)} <= services
                and sum(s.parent_span_id not in ids for s in spans) == 1)

    deadline = time.monotonic() + 20
    while not complete() and time.monotonic() < deadline:
        time.sleep(0.2)
    spans = receiver.trace(trace_id)
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if s.parent_span_id not in by_id]
    assert [(r.service, r.kind) for r in roots] == [("edge", SERVER)], roots

    def server_span(service, method):
        return next(s for s in spans if s.service == service and s.kind == SERVER and s.name.endswith(method))

    create = server_span("orders", "CreateOrder")
    assert [a.service for a in _ancestors(create, by_id)][-1] == "edge"
    for service, method in (("accounts", "GetAccount"), ("catalog", "GetProduct"), ("catalog", "ReserveStock")):
        assert create in _ancestors(server_span(service, method), by_id), (service, method)
    cassandra = [s for s in spans if s.attributes.get("db.system.name") == "cassandra"]
    assert {s.service for s in cassandra} >= {"catalog", "orders"}
    for span in cassandra:
        assert span.kind == CLIENT
        assert span.name == f"{span.attributes['db.operation.name']} {span.attributes['db.collection.name']}"
        assert any(a.kind == SERVER and a.service == span.service for a in _ancestors(span, by_id))
    assert not any("grpc.health" in s.name for s in receiver.spans), "health checks stay out of traces"
    users = {s.attributes.get("enduser.id") for s in spans if s.kind == SERVER} - {None}
    assert len(users) == 1 and len(users.pop()) == 16, "the user is a hash, the same in every service"


def test_a_client_fault_is_recorded_on_the_span_but_not_as_an_error(observed):
    stack, receiver, _ = observed
    trace_id = _order_trace_id(stack, "observed-bad-order")
    deadline = time.monotonic() + 20
    while not _create_order_span(receiver, trace_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    create = _create_order_span(receiver, trace_id)
    assert create.attributes["rpc.grpc.status_code"] == 3  # INVALID_ARGUMENT
    assert create.status_code != 2, "a caller's mistake is not a server error"


def _create_order_span(receiver, trace_id):
    return next((s for s in receiver.trace(trace_id) if s.service == "orders" and s.name.endswith("CreateOrder")), None)


def _samples(text: str, name: str) -> list:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples if sample.name == name]


def test_metrics_count_requests_per_route_status_and_rpc(observed):
    stack, _, token = observed
    for _ in range(3):
        requests.get(f"{stack.url}/v1/orders", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    requests.get(f"{stack.url}/v1/orders", timeout=10)  # a 401
    for made_up in ("FROB", "XYZZY", "PLUGH"):
        requests.request(made_up, f"{stack.url}/v1/orders", timeout=10)
    assert requests.get(f"{stack.url}/metrics", timeout=10).status_code == 404, "metrics are not on the public port"
    edge = requests.get(f"http://127.0.0.1:{stack.metrics_ports['edge']}/metrics", timeout=10).text
    counts = {(s.labels["route"], s.labels["method"], s.labels["status"]): s.value
              for s in _samples(edge, "http_server_requests_total")}
    assert counts[("/v1/orders", "GET", "200")] >= 3 and counts[("/v1/orders", "GET", "401")] >= 1
    assert sum(v for (_, method, _), v in counts.items() if method == "other") >= 3, "made-up methods share one label"
    assert {method for _, method, _ in counts} <= {"GET", "POST", "PATCH", "DELETE", "other"}
    assert counts[("/v1/orders", "POST", "200")] >= 1
    assert any(s.labels["route"] == "/v1/orders" for s in _samples(edge, "http_server_request_duration_seconds_count"))
    orders = requests.get(f"http://127.0.0.1:{stack.metrics_ports['orders']}/metrics", timeout=10).text
    handled = {(s.labels["grpc_method"], s.labels["grpc_code"]): s.value for s in _samples(orders, "grpc_server_handled_total")}
    assert handled[("ListMyOrders", "OK")] >= 3 and handled[("CreateOrder", "OK")] >= 1


def test_logs_are_json_with_trace_ids_and_no_secrets(observed):
    stack, _, token = observed
    trace_id = _order_trace_id(stack)
    everything = {name: _json_lines(p) for name, p in
                  [("edge", stack.edge), ("orders", stack.orders), ("accounts", stack.accounts), ("catalog", stack.catalogs[0])]}
    for name, entries in everything.items():
        assert entries and all({"timestamp", "level", "service", "trace_id", "span_id", "request_id"} <= e.keys() for e in entries), name
    assert any(e["trace_id"] == trace_id for e in everything["edge"])
    raw = "".join(line for p in (stack.edge, stack.orders, stack.accounts, *stack.catalogs) for line in p.lines)
    assert token not in raw and token.split(".")[2] not in raw
    assert servers.PASSWORD not in raw


def test_cassandra_sends_the_services_no_warning(observed):
    """Every statement names its table with the keyspace and no session selects one, so Cassandra 4+
    has no `USE <keyspace>` anti-pattern to warn of (the driver logs each server warning it gets)."""
    stack, _, _ = observed
    raw = "".join(line for p in (stack.orders, stack.accounts, *stack.catalogs) for line in p.lines)
    assert "Server warning" not in raw and "anti-pattern" not in raw


def test_every_trace_is_a_request_and_housekeeping_is_not_traced(observed):
    """Readiness probes ping each store every 2 s and orders runs its recovery pass every 0.5 s here:
    none of that may show up as traces of its own. Every trace starts at a request to the edge."""
    _, receiver, _ = observed
    time.sleep(5)  # a few rounds of probes and recovery passes, in every service
    by_id = {s.span_id: s for s in receiver.spans}
    roots = [s for s in receiver.spans if s.parent_span_id not in by_id]
    assert roots and {(r.service, r.kind) for r in roots} == {("edge", SERVER)}, \
        sorted({(r.service, r.name) for r in roots if r.service != "edge"})


def test_a_server_fault_is_an_error_span(observed):
    """Runs last in this module: it stops catalog."""
    stack, receiver, token = observed
    product_id = make_product(stack, 1)
    stack.catalogs[0].stop()
    failed = requests.post(f"{stack.url}/v1/orders", timeout=30, json={"items": [{"productId": product_id, "quantity": "1"}]},
                           headers={"Authorization": f"Bearer {token}", "X-Request-Id": "observed-outage"})
    assert failed.status_code in (503, 504)
    trace_id = _order_trace_id(stack, "observed-outage")
    deadline = time.monotonic() + 20
    while not _create_order_span(receiver, trace_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    create = _create_order_span(receiver, trace_id)
    assert create.status_code == 2 and create.attributes["rpc.grpc.status_code"] in (4, 14)
