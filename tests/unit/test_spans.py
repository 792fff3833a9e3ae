"""observability/spans.py records what the SDK's span records: the same calls on both tracers give
the same finished spans (name, kind, parent, attributes and what was dropped, events, links,
status, resource and scope), whatever the calls (values to clean, limits passed, calls after the
end, exceptions, status rules), and the same sampling decisions."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from observability import spans
from observability.otlp import encode_spans

SCOPE = "shop-observability"
REMOTE = SpanContext(trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0xB7AD6B7169203331, is_remote=True,
                     trace_flags=TraceFlags(TraceFlags.SAMPLED))
UNSAMPLED = SpanContext(trace_id=0x1AF7651916CD43DD8448EB211C80319C, span_id=0xC7AD6B7169203331, is_remote=True,
                        trace_flags=TraceFlags(TraceFlags.DEFAULT))
FAILURE = ValueError("no such thing")  # one exception for both tracers: the same stack trace text


def _record(scenario, ours: bool, sampler=ALWAYS_ON) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "edge"}), sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(SCOPE)
    scenario(spans.Tracer(tracer, SCOPE) if ours else tracer)
    return list(memory.get_finished_spans())


def _seen(span) -> dict:
    """What a finished span says, less what every run makes anew: ids, times, the instance id, and the
    frames of a stack trace (the two tracers' own frames differ; its last line is the exception)."""
    def event_attributes(event) -> dict:
        attributes = dict(event.attributes)
        if "exception.stacktrace" in attributes:
            attributes["exception.stacktrace"] = attributes["exception.stacktrace"].splitlines()[-1]
        return attributes

    parent = span.parent
    return {
        "name": span.name, "kind": span.kind, "sampled": span.context.trace_flags.sampled,
        "parent": None if parent is None else "the remote caller" if parent == REMOTE else "in this process",
        "attributes": dict(span.attributes), "dropped": (span.dropped_attributes, span.dropped_events, span.dropped_links),
        "events": [(e.name, event_attributes(e), e.dropped_attributes) for e in span.events],
        "links": [(link.context.span_id, dict(link.attributes)) for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "resource": {k: v for k, v in span.resource.attributes.items() if k != "service.instance.id"},
        "scope": span.instrumentation_scope.name,
        "has_times": span.start_time is not None and span.end_time is not None and span.end_time >= span.start_time,
    }


def _same(scenario, sampler=ALWAYS_ON) -> list:
    sdk, ours = _record(scenario, False, sampler), _record(scenario, True, sampler)
    assert [_seen(s) for s in ours] == [_seen(s) for s in sdk]
    assert all(isinstance(s, spans.Span) for s in ours)  # it was our tracer that made them
    return ours


def _server_request(tracer) -> None:
    parent = trace.set_span_in_context(NonRecordingSpan(REMOTE))
    span = tracer.start_span("GET /v1/things/<id>", context=parent, kind=SpanKind.SERVER,
                             attributes={"http.request.method": "GET", "url.path": "/v1/things/1"},
                             links=[Link(REMOTE, {"link.reason": "caller"}), Link(REMOTE)])
    with trace.use_span(span), tracer.start_as_current_span("shop.Things/Get", kind=SpanKind.CLIENT,
                                      attributes={"rpc.system": "grpc"}) as client:
        client.set_attribute("rpc.grpc.status_code", 0)
    span.set_attributes({"http.response.status_code": 200, "ratio": 0.5, "ok": True})
    span.add_event("retry", {"attempt": 2})
    span.add_link(REMOTE, {"late": "yes"})
    span.update_name("GET /v1/things/<id> (renamed)")
    span.set_status(Status(StatusCode.ERROR, "upstream failed"))
    span.end()


def test_a_request_with_a_child_events_links_and_status_is_recorded_as_the_sdk_records_it():
    ours = _same(_server_request)
    client, server = ours
    assert client.parent.span_id == server.context.span_id and client.context.trace_id == REMOTE.trace_id
    assert server.attributes["http.response.status_code"] == 200 and len(server.links) == 3


def test_values_to_clean_and_keys_to_drop_go_the_sdk_way():
    def scenario(tracer):
        span = tracer.start_span("clean", attributes={"list": ["a", "b"], "none": None})
        span.set_attribute("numbers", [1, 2, 3])
        span.set_attributes({"mapping": {"a": 1}, "plain": "kept"})
        span.end()
        span = tracer.start_span("an empty key", attributes={"a": 1})
        span.set_attribute("", "dropped")
        span.end()
        span = tracer.start_span("an empty key among others", attributes={"a": 1})
        span.set_attributes({"": "dropped", "b": 2})
        span.end()
        span = tracer.start_span("a key that is not text", attributes={"a": 1})
        span.set_attributes({"b": 2, 7: "kept as '7'"})
        span.set_attribute(8, "dropped")
        span.end()

    cleaned, empty, among, not_text = _same(scenario)
    assert cleaned.attributes["list"] == ("a", "b") and cleaned.attributes["numbers"] == (1, 2, 3)
    assert dict(empty.attributes) == {"a": 1} and empty.dropped_attributes == 1
    assert dict(among.attributes) == {"a": 1, "b": 2}
    assert dict(not_text.attributes) == {"a": 1, "b": 2, "7": "kept as '7'"} and not_text.dropped_attributes == 1


@pytest.mark.parametrize("limits", [{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "3", "OTEL_SPAN_EVENT_COUNT_LIMIT": "1",
                                     "OTEL_SPAN_LINK_COUNT_LIMIT": "1"},
                                    {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "3", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "4"}],
                         ids=["counts", "counts and lengths"])
def test_limits_drop_and_count_as_the_sdks_do(monkeypatch, limits):
    for name, value in limits.items():
        monkeypatch.setenv(name, value)

    def scenario(tracer):
        span = tracer.start_span("limited", attributes={"a": "long text", "b": 1}, links=[Link(REMOTE), Link(REMOTE)])
        span.set_attributes({"c": 2, "d": 3})
        span.add_event("first")
        span.add_event("second")
        span.end()

    [span] = _same(scenario)
    assert set(span.attributes) == {"b", "c", "d"} and span.dropped_attributes == 1


def test_an_ended_span_takes_no_more_changes():
    def scenario(tracer):
        span = tracer.start_span("ended", attributes={"a": 1})
        span.end()
        span.set_attribute("late", 1)
        span.set_attributes({"later": 2})
        span.add_event("late")
        span.set_status(Status(StatusCode.ERROR))
        span.update_name("renamed late")
        span.end()  # a second end records nothing more
        assert not span.is_recording()

    [span] = _same(scenario)
    assert span.name == "ended" and dict(span.attributes) == {"a": 1} and span.status.status_code is StatusCode.UNSET


def test_status_rules_ok_is_final_and_unset_is_ignored():
    def scenario(tracer):
        for first, then in ((Status(StatusCode.ERROR, "x"), Status(StatusCode.OK)),
                            (Status(StatusCode.OK), Status(StatusCode.ERROR, "too late")),
                            (Status(StatusCode.ERROR, "kept"), Status(StatusCode.UNSET))):
            with tracer.start_as_current_span("status") as span:
                span.set_status(first)
                span.set_status(then)
        with tracer.start_as_current_span("code") as span:
            span.set_status(StatusCode.ERROR, "by code")

    statuses = [(s.status.status_code, s.status.description) for s in _same(scenario)]
    assert statuses == [(StatusCode.OK, None), (StatusCode.OK, None), (StatusCode.ERROR, "kept"),
                        (StatusCode.ERROR, "by code")]


def test_exceptions_are_recorded_as_events_with_the_error_status():
    def scenario(tracer):
        with pytest.raises(ValueError), tracer.start_as_current_span("current"):
            raise FAILURE
        with pytest.raises(ValueError), tracer.start_span("as a context manager"):
            raise FAILURE
        with pytest.raises(ValueError), tracer.start_as_current_span("quiet", record_exception=False,
                                                                     set_status_on_exception=False):
            raise FAILURE
        span = tracer.start_span("recorded")
        span.record_exception(FAILURE, {"extra": "yes"})
        span.end()

    current, managed, quiet, recorded = _same(scenario)
    assert current.status.status_code is StatusCode.ERROR and current.events[0].name == "exception"
    assert current.events[0].attributes["exception.type"] == "ValueError"
    assert managed.events[0].attributes["exception.escaped"] == "True"
    assert quiet.events == () and quiet.status.status_code is StatusCode.UNSET
    assert recorded.events[0].attributes["extra"] == "yes"


def test_sampling_decisions_are_the_samplers():
    def scenario(tracer):
        tracer.start_span("root").end()
        tracer.start_span("under a sampled parent", context=trace.set_span_in_context(NonRecordingSpan(REMOTE))).end()
        unsampled = tracer.start_span("under an unsampled parent",
                                      context=trace.set_span_in_context(NonRecordingSpan(UNSAMPLED)))
        assert not unsampled.is_recording() and unsampled.get_span_context().trace_id == UNSAMPLED.trace_id
        unsampled.end()

    assert [s.name for s in _same(scenario, ParentBased(ALWAYS_OFF))] == ["under a sampled parent"]
    assert [s.name for s in _same(scenario, ParentBased(ALWAYS_ON))] == ["root", "under a sampled parent"]
    assert _same(scenario, TraceIdRatioBased(0.0)) == []


def test_our_spans_export_as_the_sdk_encoder_writes_them():
    ours = _record(_server_request, True)
    assert ExportTraceServiceRequest.FromString(encode_spans(ours)) == sdk_encode_spans(ours)


def test_span_processors_hear_start_ending_and_end_in_the_sdks_order():
    class Hooks(SpanProcessor):
        def __init__(self):
            self.heard: list[tuple[str, str]] = []

        def on_start(self, span, parent_context=None):
            self.heard.append(("start", span.name))

        def _on_ending(self, span):
            self.heard.append(("ending", span.name))

        def on_end(self, span):
            self.heard.append(("end", span.name))

    heard = {}
    for ours in (False, True):
        hooks = Hooks()
        provider = TracerProvider()
        provider.add_span_processor(hooks)
        tracer = provider.get_tracer(SCOPE)
        with (spans.Tracer(tracer, SCOPE) if ours else tracer).start_as_current_span("outer"):
            pass
        heard[ours] = hooks.heard
    assert heard[True] == heard[False] == [("start", "outer"), ("ending", "outer"), ("end", "outer")]
