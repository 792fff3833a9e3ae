"""Sampling as production runs it, with a real Jaeger: no new trace is recorded (ratio 0 here, to make
each recorded one visibly forced), an operator calling from a trusted network forces a trace of one
request through every service with a sampled traceparent, and a public caller's traceparent neither
forces nor joins a trace."""

from __future__ import annotations

import http.client
import uuid

import pytest

from harness import servers
from harness.shop import shopper, wait_for
from harness.stack import Stack
from tests.support.process_logs import access_trace_id
from tools.jaeger import SERVER, Jaeger, JaegerPorts

OPERATOR = "127.0.0.2"  # the network the edge trusts (EDGE_TRACE_TRUSTED_NETWORKS)
PUBLIC = "127.0.0.1"


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sampled")
    with Jaeger(JaegerPorts.free(), log_path=tmp / "jaeger.log") as jaeger:
        telemetry = {**jaeger.exporter_env(), "OTEL_BSP_SCHEDULE_DELAY": "100",
                     "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
        stack = Stack(servers.write_test_pki(tmp / "pki"), tmp, telemetry_env=telemetry,
                      edge_env={"EDGE_TRACE_TRUSTED_NETWORKS": f"{OPERATOR}/32"})
        try:
            yield stack, jaeger, shopper(stack)
        finally:
            stack.stop()


def _my_orders(stack, token: str, source: str, trace_id: str, flags: str = "01") -> str:
    """GET /v1/orders from `source` with a traceparent of `trace_id`; returns the request id."""
    request_id = uuid.uuid4().hex
    connection = http.client.HTTPConnection("127.0.0.1", stack.edge.port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", "/v1/orders", headers={
            "Authorization": f"Bearer {token}", "X-Request-Id": request_id,
            "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-{flags}"})
        reply = connection.getresponse()
        assert reply.status == 200, reply.read()
    finally:
        connection.close()
    return request_id


def _through_orders(spans) -> bool:
    return {s.service for s in spans if s.kind == SERVER} >= {"edge", "orders"}


def test_an_operator_forces_one_trace_through_every_service_and_the_public_cannot(sampled):
    stack, jaeger, token = sampled
    public = uuid.uuid4().hex
    public_request = _my_orders(stack, token, PUBLIC, public)
    not_forced = uuid.uuid4().hex
    _my_orders(stack, token, OPERATOR, not_forced, flags="00")  # trusted, but not asking for a trace
    forced = uuid.uuid4().hex
    _my_orders(stack, token, OPERATOR, forced)

    assert wait_for(lambda: _through_orders(jaeger.query.trace(forced)), 20), "the forced trace reaches Jaeger"
    spans = jaeger.query.trace(forced)
    edge = [s for s in spans if s.service == "edge" and s.kind == SERVER]
    assert len(edge) == 1 and edge[0].parent_span_id, "the edge's span continues the operator's"
    assert access_trace_id(stack, public_request) != public, "a public caller's trace id is not taken"
    # Sent before the forced one and exported by the same processes: had they been recorded, they would be there.
    assert jaeger.query.trace(public) == [] and jaeger.query.trace(not_forced) == []
    assert jaeger.query.trace(access_trace_id(stack, public_request)) == [], "at ratio 0 no new trace is recorded"
