"""Orders seen through telemetry: each one a single trace in a real Jaeger, from the edge through every
service down to the Cassandra statements, RED metrics that count them, and JSON logs that carry their
trace ids and none of their secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from harness import servers
from harness.shop import make_product, shopper, wait_for
from harness.stack import Stack
from tests.support.process_logs import access_trace_id, json_lines
from tools.jaeger import CLIENT, ERROR, SERVER, Jaeger, JaegerPorts

pytestmark = pytest.mark.cassandra
SHOP = {"edge", "orders", "accounts", "catalog"}
GOOD_ORDERS = ("observed-order-1", "observed-order-2")


@pytest.fixture(scope="module")
def observed(tmp_path_factory, cassandra_settings):
    """The whole system on Cassandra, every process exporting spans to a Jaeger of its own (free
    ports, traces in memory) and serving metrics; two orders placed and one refused."""
    tmp = tmp_path_factory.mktemp("observed")
    with Jaeger(JaegerPorts.free(), log_path=tmp / "jaeger.log") as jaeger:
        since = datetime.now(UTC)
        telemetry = {**jaeger.exporter_env(), "OTEL_BSP_SCHEDULE_DELAY": "100"}
        stack = Stack(servers.write_test_pki(tmp / "pki"), tmp, store_env=servers.cassandra_env(cassandra_settings()),
                      telemetry_env=telemetry, metrics=True)
        try:
            product_id, token = make_product(stack, 20), shopper(stack)
            for request_id in GOOD_ORDERS:
                reply = _order(stack, token, product_id, 1, request_id)
                assert reply.status_code == 200, reply.text
            # More than is in stock: well formed (the edge passes it on), refused by orders.
            bad = _order(stack, token, product_id, 21, "observed-bad-order")
            assert bad.status_code == 409, bad.text
            yield stack, jaeger, token, since
        finally:
            stack.stop()


def _order(stack, token: str, product_id: str, quantity: int, request_id: str):
    return requests.post(f"{stack.url}/v1/orders", timeout=30, json={"items": [{"productId": product_id, "quantity": str(quantity)}]},
                         headers={"Authorization": f"Bearer {token}", "X-Request-Id": request_id})


def _complete(spans) -> bool:
    """Every process's server span has arrived, and every span's parent too (each process exports
    in batches of its own, so a child may arrive before its parent)."""
    ids = {s.span_id for s in spans}
    return ({s.service for s in spans if s.kind == SERVER} >= SHOP
            and sum(s.parent_span_id not in ids for s in spans) == 1)


def _read_trace(jaeger, trace_id: str, ready=_complete) -> list:
    wait_for(lambda: ready(jaeger.query.trace(trace_id)))
    return jaeger.query.trace(trace_id)


def _ancestors(span, by_id) -> list:
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def _store_spans(spans) -> list:
    """Cassandra statement spans, by the database semantic conventions (old and new attribute name)."""
    return [s for s in spans if "cassandra" in (s.attributes.get("db.system"), s.attributes.get("db.system.name"))]


def _create_order(spans):
    return next((s for s in spans if s.service == "orders" and s.kind == SERVER and s.name.endswith("/CreateOrder")), None)


@pytest.mark.parametrize("request_id", GOOD_ORDERS)
def test_an_order_is_one_trace_from_the_edge_through_every_service_to_cassandra(observed, request_id):
    stack, jaeger, _, _ = observed
    spans = _read_trace(jaeger, access_trace_id(stack, request_id))
    by_id = {s.span_id: s for s in spans}
    assert all(s.parent_span_id in by_id for s in spans if s.parent_span_id), "every parent span is in the trace"
    roots = [s for s in spans if not s.parent_span_id]
    assert [(r.service, r.kind, r.name) for r in roots] == [("edge", SERVER, "POST /v1/orders")], roots

    def server_span(service, method):
        return next(s for s in spans if s.service == service and s.kind == SERVER and s.name.endswith(f"/{method}"))

    create = server_span("orders", "CreateOrder")
    assert _ancestors(create, by_id)[-1] is roots[0]
    for service, method in (("accounts", "GetAccount"), ("catalog", "BatchGetProducts"), ("catalog", "ReserveStock")):
        assert create in _ancestors(server_span(service, method), by_id), (service, method)
    store = _store_spans(spans)
    assert {s.service for s in store} == {"accounts", "catalog", "orders"}, "each service reads or writes its keyspace"
    for span in store:
        assert any(a.kind == SERVER and a.service == span.service for a in _ancestors(span, by_id)), span
    for span in store:
        assert span.kind == CLIENT
        assert span.name == f"{span.attributes['db.operation.name']} {span.attributes['db.collection.name']}"
    users = {s.attributes.get("enduser.id") for s in spans if s.kind == SERVER} - {None}
    assert len(users) == 1 and len(users.pop()) == 16, "the user is a hash, the same in every service"


def test_each_order_is_a_trace_of_its_own(observed):
    """Jaeger's search by service finds exactly one trace per order placed, refused ones included:
    no order is split across traces, and no two orders share one."""
    stack, jaeger, _, since = observed
    placed = {access_trace_id(stack, request_id) for request_id in (*GOOD_ORDERS, "observed-bad-order")}
    assert len(placed) == 3
    for trace_id in placed:
        _read_trace(jaeger, trace_id, ready=_create_order)
    found = jaeger.query.find_traces("orders", since, datetime.now(UTC) + timedelta(minutes=1), limit=1000)
    assert {trace_id for trace_id, spans in found.items() if _create_order(spans)} == placed


def test_a_client_fault_is_recorded_on_the_span_but_not_as_an_error(observed):
    stack, jaeger, _, _ = observed
    spans = _read_trace(jaeger, access_trace_id(stack, "observed-bad-order"), ready=_create_order)
    create = _create_order(spans)
    assert create.attributes["rpc.grpc.status_code"] == 9  # FAILED_PRECONDITION: out of stock
    assert create.status_code != ERROR, "a caller's mistake is not a server error"


def test_a_request_refused_before_its_route_is_traced_counted_and_logged_too(observed):
    """Telemetry wraps the whole app: an answer made by a hook before any route (here a malformed
    Request-Timeout; an overload refusal goes the same way) has its span, metric and access line."""
    stack, jaeger, token, _ = observed
    refused = requests.get(f"{stack.url}/v1/orders", timeout=10, headers={
        "Authorization": f"Bearer {token}", "Request-Timeout": "soon", "X-Request-Id": "observed-refused"})
    assert refused.status_code == 400, refused.text
    spans = _read_trace(jaeger, access_trace_id(stack, "observed-refused"), ready=bool)
    assert [(s.service, s.kind, s.name, s.attributes["http.response.status_code"]) for s in spans] == [
        ("edge", SERVER, "GET /v1/orders", 400)]
    edge = requests.get(f"http://127.0.0.1:{stack.metrics_ports['edge']}/metrics", timeout=10).text
    assert any(s.labels == {"route": "/v1/orders", "method": "GET", "status": "400"} and s.value >= 1
               for s in _samples(edge, "http_server_requests_total"))


def _samples(text: str, name: str) -> list:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples if sample.name == name]


def test_metrics_count_requests_per_route_status_and_rpc(observed):
    stack, _, token, _ = observed
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
    stack, _, token, _ = observed
    trace_id = access_trace_id(stack, GOOD_ORDERS[0])
    everything = {name: json_lines(p) for name, p in
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
    stack = observed[0]
    raw = "".join(line for p in (stack.orders, stack.accounts, *stack.catalogs) for line in p.lines)
    assert "Server warning" not in raw and "anti-pattern" not in raw


def test_probes_and_housekeeping_leave_no_trace(observed):
    """Health checks (gRPC and the edge's /healthz and /readyz), the readiness pings of each store and
    orders' recovery pass (every 0.5 s here) leave no trace of their own: every trace Jaeger holds
    starts at a request to the edge."""
    stack, jaeger, token, since = observed
    for path in ("/healthz", "/readyz"):
        assert requests.get(f"{stack.url}{path}", timeout=10).status_code == 200
    for process in (stack.accounts, stack.orders, *stack.catalogs):
        with servers.channel(stack.pki_dir, process.port, "operator") as channel:
            assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status == 1
    # Spans leave each process in the order they end: once an order made after the probes is in
    # Jaeger whole, whatever the probes and the housekeeping before it produced is there too.
    reply = _order(stack, token, make_product(stack, 1), 1, "observed-after-probes")
    assert reply.status_code == 200, reply.text
    assert _complete(_read_trace(jaeger, access_trace_id(stack, "observed-after-probes")))
    assert set(jaeger.query.services()) == SHOP
    traces: dict = {}
    for service in SHOP:
        traces |= jaeger.query.find_traces(service, since, datetime.now(UTC) + timedelta(minutes=1), limit=1000)
    roots = [s for spans in traces.values() for s in spans if not s.parent_span_id]
    assert roots and {(r.service, r.kind) for r in roots} == {("edge", SERVER)}, \
        sorted({(r.service, r.name) for r in roots if r.service != "edge"})
    names = {s.name for spans in traces.values() for s in spans}
    assert not {n for n in names if "grpc.health" in n or "/healthz" in n or "/readyz" in n}, names


def test_a_server_fault_is_an_error_span(observed):
    """Runs last in this module: it stops catalog."""
    stack, jaeger, token, _ = observed
    product_id = make_product(stack, 1)
    stack.catalogs[0].stop()
    failed = _order(stack, token, product_id, 1, "observed-outage")
    assert failed.status_code in (503, 504), failed.text
    spans = _read_trace(jaeger, access_trace_id(stack, "observed-outage"),
                        ready=lambda spans: _create_order(spans) and any(s.service == "edge" and s.kind == SERVER for s in spans))
    create = _create_order(spans)
    assert create.status_code == ERROR and create.attributes["rpc.grpc.status_code"] in (4, 14)
    edge = next(s for s in spans if s.service == "edge" and s.kind == SERVER)
    assert edge.status_code == ERROR and edge.attributes["http.response.status_code"] == failed.status_code
