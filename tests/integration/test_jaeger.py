"""tools/jaeger runs the real Jaeger v2 with our config: spans sent over OTLP read back through the
query API with their parents, attributes and status; two Jaegers share a machine; a taken port is
named rather than waited on."""

from __future__ import annotations

import dataclasses
import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from harness.shop import wait_for
from tools.jaeger import CLIENT, ERROR, SERVER, Jaeger, JaegerPorts


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory):
    with Jaeger(JaegerPorts.free(), log_path=tmp_path_factory.mktemp("jaeger") / "jaeger.log") as running:
        yield running


def _send(jaeger: Jaeger, service: str) -> tuple[str, str]:
    """A server span with a failing Cassandra client span under it, sent over OTLP/gRPC; (trace id, child id)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=jaeger.otlp_grpc_endpoint, insecure=True)))
    tracer = provider.get_tracer("test-scope")
    with (tracer.start_as_current_span("POST /v1/orders", kind=trace.SpanKind.SERVER) as root,
          tracer.start_as_current_span("INSERT", kind=trace.SpanKind.CLIENT, record_exception=False,
                                       attributes={"db.system.name": "cassandra", "rows": 3}) as child):
        child.set_status(trace.Status(trace.StatusCode.ERROR))
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x"), format(child.get_span_context().span_id, "016x")


def test_spans_sent_over_otlp_read_back_by_trace_id_with_parents_attributes_and_status(jaeger):
    service = f"svc-{uuid.uuid4().hex[:8]}"
    trace_id, child_id = _send(jaeger, service)
    assert wait_for(lambda: len(jaeger.query.trace(trace_id)) == 2)
    spans = {s.kind: s for s in jaeger.query.trace(trace_id)}
    root, child = spans[SERVER], spans[CLIENT]
    assert (root.service, root.scope, root.name, root.parent_span_id) == (service, "test-scope", "POST /v1/orders", "")
    assert (child.span_id, child.parent_span_id, child.status_code) == (child_id, root.span_id, ERROR)
    assert child.attributes == {"db.system.name": "cassandra", "rows": 3}
    assert service in jaeger.query.services()


def test_traces_are_found_by_service_and_an_unknown_trace_reads_empty(jaeger):
    ours, theirs = f"svc-{uuid.uuid4().hex[:8]}", f"svc-{uuid.uuid4().hex[:8]}"
    since = datetime.now(UTC) - timedelta(seconds=5)
    sent = {_send(jaeger, ours)[0] for _ in range(2)}
    _send(jaeger, theirs)

    def found():
        return jaeger.query.find_traces(ours, since, datetime.now(UTC) + timedelta(minutes=1))

    assert wait_for(lambda: set(found()) == sent)
    assert all(len(spans) == 2 for spans in found().values())
    assert jaeger.query.trace(uuid.uuid4().hex) == []


def test_two_jaegers_run_side_by_side_and_keep_apart_what_each_is_sent(jaeger, tmp_path):
    with Jaeger(JaegerPorts.free(), log_path=tmp_path / "second.log") as second:
        trace_id, _ = _send(second, "second")
        assert wait_for(lambda: len(second.query.trace(trace_id)) == 2)
        assert jaeger.query.trace(trace_id) == []
        assert second.started_in is not None and second.started_in < 10 and second.rss_bytes() > 0
    assert not second.running


def test_a_port_already_taken_is_named_before_jaeger_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = dataclasses.replace(JaegerPorts.free(), query_http=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="JAEGER_QUERY_HTTP_PORT"):
            Jaeger(ports, log_path=tmp_path / "jaeger.log").start()
