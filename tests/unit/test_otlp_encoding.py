"""observability/otlp.py writes the bytes of the ExportTraceServiceRequest the SDK's encoder builds:
parsed back with the official protobuf classes, both are the same message, for spans carrying every
kind of field and attribute value the SDK allows."""

from __future__ import annotations

import enum

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from observability.otlp import encode_spans


class Code(enum.IntEnum):
    NOT_FOUND = 5


EVERY_VALUE = {"enum": Code.NOT_FOUND, "text": "héllo", "empty": "", "yes": True, "no": False, "zero": 0, "big": 2 ** 62, "negative": -7,
               "ratio": 0.25, "nought": 0.0, "texts": ("a", "b"), "numbers": (1, -2, 3), "flags": (True, False),
               "reals": (1.5, -0.5)}


def _spans() -> list:
    memory = InMemorySpanExporter()
    providers = [TracerProvider(resource=Resource.create({"service.name": name, "service.version": "1.2.3", "n": 3}))
                 for name in ("edge", "accounts")]
    for provider in providers:
        provider.add_span_processor(SimpleSpanProcessor(memory))
    edge = providers[0].get_tracer("shop-observability", "0.1", schema_url="https://opentelemetry.io/schemas/1.21.0")
    other = providers[0].get_tracer("other-scope")
    remote = SpanContext(trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0xB7AD6B7169203331, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=TraceState([("vendor", "x1"), ("b", "2")]))
    parent = trace.set_span_in_context(NonRecordingSpan(remote))
    with edge.start_as_current_span("GET /v1/things/<id>", context=parent, kind=SpanKind.SERVER, attributes=EVERY_VALUE,
                                    links=[Link(remote, {"link.reason": "caller"}), Link(remote)]) as server:
        server.add_event("retry", {"attempt": 2, "why": "unavailable"})
        server.add_event("bare")
        with edge.start_as_current_span("shop.Things/Get", kind=SpanKind.CLIENT) as client:
            client.set_status(Status(StatusCode.ERROR, "upstream failed"))
        with other.start_as_current_span("inner"):
            pass
        server.set_status(Status(StatusCode.OK))
    with providers[1].get_tracer("shop-observability").start_as_current_span("root", kind=SpanKind.INTERNAL):
        pass
    with edge.start_as_current_span("producer", kind=SpanKind.PRODUCER, attributes={"list": ()}):
        pass
    return list(memory.get_finished_spans())


def test_the_bytes_are_the_message_the_sdk_encoder_builds():
    spans = _spans()
    first, again = encode_spans(spans), encode_spans(spans)  # again: with the pairs, names and statuses kept
    assert first == again
    ours = ExportTraceServiceRequest.FromString(first)
    assert ours == sdk_encode_spans(spans)
    assert [len(r.scope_spans) for r in ours.resource_spans] == [2, 1]  # grouped by resource, then scope
    assert sum(len(s.spans) for r in ours.resource_spans for s in r.scope_spans) == len(spans) == 5


def test_a_span_alone_and_an_empty_batch():
    span = _spans()[0]
    assert ExportTraceServiceRequest.FromString(encode_spans([span])) == sdk_encode_spans([span])
    assert encode_spans([]) == b"" and ExportTraceServiceRequest.FromString(b"") == sdk_encode_spans([])


def test_a_value_the_sdk_would_not_keep_is_refused_not_written_wrong():
    from observability.otlp import _any_value

    with pytest.raises(TypeError):
        _any_value(object())
