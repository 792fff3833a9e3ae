"""The project's spans: recorded as the OpenTelemetry SDK records them, made with less work.

    tracer = Tracer(provider.get_tracer(name), name)   # observability.tracing.tracer() does this

The SDK's Span, for every span, cleans each attribute value through isinstance checks against the
abstract Sequence and Mapping types into a BoundedAttributes, makes two BoundedLists (each with a
lock) for the events and links most spans never get, and at its end copies itself into a
ReadableSpan for the span processors: 19.5 us to make and end one here, against 8.1 for this one
(docs/benchmarks.md, "What a span costs"). This Span keeps attributes whose keys are non-empty
strings and whose values are plain (str, bool, int, float) in a dict as they are, makes the SDK's
bounded containers only when a span needs them (a value to clean, more attributes than the limit,
an event, a link), and hands itself to the span processors when it ends: it accepts no change after
that, so it is the ReadableSpan. Whatever else a span needs is the SDK's: the sampler, ids, resource
and span processors of the SDK tracer it wraps, SpanLimits from the standard OTEL_*_LIMIT settings,
the Event and Link types, the status rules. Exporters, processors and tests see a ReadableSpan
(tests/unit/test_spans.py holds its export to the SDK span's for the same calls).

Not carried over: the SDK's opt-in self-metrics (OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED) and its
per-scope tracer configurator, neither of which the project uses.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from time import time_ns

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import Event, SpanLimits
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

_LOGGER = logging.getLogger(__name__)
_PLAIN = frozenset((str, bool, int, float))  # values kept as they are: exactly these types, nothing to clean
_TEXT = frozenset((str,))  # keys kept as they are (and not empty)
_UNSET = Status(StatusCode.UNSET)
# (sampled, random trace id) -> the span's trace flags, made once
_FLAGS = {(sampled, random): TraceFlags((TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
                                        | (TraceFlags.RANDOM_TRACE_ID if random else 0))
          for sampled in (False, True) for random in (False, True)}


class Span(sdk_trace.Span):
    """A recording span: the SDK's Span (what processors are written for), made and ended by this
    module's code. Made by Tracer.start_span, ended once; thread-safe like the SDK's."""

    def __init__(self, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind,
                 attributes: Mapping, links: Sequence[Link], tracer: Tracer,
                 record_exception: bool, set_status_on_exception: bool):
        # Every field of the SDK's Span, set here rather than through its __init__ (see the module's doc)
        self._name, self._context, self._parent, self._kind = name, context, parent, kind
        self._resource, self._instrumentation_scope = tracer.resource, tracer.instrumentation_scope
        self._instrumentation_info = tracer.instrumentation_info
        self._start_time: int | None = None
        self._end_time: int | None = None
        self._status = _UNSET
        self._limits = limits = tracer.limits
        self._span_processor = tracer.span_processor
        self._sampler, self._trace_config, self._record_end_metrics = tracer.sampler, None, None
        self._record_exception, self._set_status_on_exception = record_exception, set_status_on_exception
        self._lock = threading.Lock()
        self._attributes: dict | BoundedAttributes = {}
        if attributes:
            self._add_attributes(attributes)
        self._events: Sequence = ()  # a BoundedList once there is an event
        self._links: Sequence = ()
        valid = [link for link in links if link and sdk_trace._is_valid_link(link.context, link.attributes)] if links else ()
        if valid:
            for link in valid:  # made immutable as the SDK does: the span's links are its own
                link._attributes = BoundedAttributes(limits.max_link_attributes, link.attributes,
                                                     max_value_len=limits.max_attribute_length)
            self._links = BoundedList.from_seq(limits.max_links, valid)

    def __repr__(self):
        return f'{type(self).__name__}(name="{self._name}", context={self._context})'

    def _add_attributes(self, attributes: Mapping, one_by_one: bool = False) -> None:
        """Adds attributes; called in __init__ or under the lock. Anything but plain values within the
        limits goes to the SDK's container, the SDK's way: a mapping at once (set_attributes, which
        turns a key that is not text into text) or one attribute at a time (set_attribute, which drops it)."""
        kept = self._attributes
        limits = self._limits
        if (type(kept) is dict and limits.max_span_attribute_length is None
                and (limits.max_span_attributes is None or len(kept) + len(attributes) <= limits.max_span_attributes)
                and _PLAIN.issuperset(map(type, attributes.values()))
                and _TEXT.issuperset(map(type, attributes)) and "" not in attributes):
            kept.update(attributes)
            return
        if type(kept) is dict:  # from now on the SDK's container: it cleans, truncates, bounds and counts
            self._attributes = kept = BoundedAttributes(limits.max_span_attributes, kept, immutable=False,
                                                        max_value_len=limits.max_span_attribute_length)
        if one_by_one:
            for key, value in attributes.items():
                kept[key] = value
        else:
            kept._set_items(attributes)  # type: ignore[union-attr]  # a BoundedAttributes by now

    def _open(self, change: str) -> bool:
        """True while the span may change (call under the lock); warns as the SDK does when it has ended."""
        if self._end_time is None:
            return True
        _LOGGER.warning("Tried to %s on an ended span.", change)
        return False

    # --- trace.Span --------------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context  # type: ignore[return-value]  # always set: ReadableSpan allows None

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attributes(self, attributes: Mapping) -> None:
        with self._lock:
            if self._open("set attributes"):
                self._add_attributes(attributes)

    def set_attribute(self, key: str, value) -> None:
        with self._lock:
            if self._open("set an attribute"):
                self._add_attributes({key: value}, one_by_one=True)

    def add_event(self, name: str, attributes=None, timestamp: int | None = None) -> None:
        limits = self._limits
        event = Event(name, BoundedAttributes(limits.max_event_attributes, attributes, immutable=True,
                                              max_value_len=limits.max_attribute_length), timestamp)
        with self._lock:
            if self._open("add an event"):
                if not self._events:
                    self._events = BoundedList(limits.max_events)
                self._events.append(event)  # type: ignore[attr-defined]

    def add_link(self, context: SpanContext, attributes=None) -> None:
        if not sdk_trace._is_valid_link(context, attributes):
            return
        limits = self._limits
        link = Link(context, BoundedAttributes(limits.max_link_attributes, attributes, immutable=True,
                                               max_value_len=limits.max_attribute_length))
        with self._lock:
            if self._open("add a link"):
                if not self._links:
                    self._links = BoundedList(limits.max_links)
                self._links.append(link)  # type: ignore[attr-defined]

    def update_name(self, name: str) -> None:
        with self._lock:
            if self._open("update the name"):
                self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """The SDK's rules: OK is final, UNSET is ignored, a Status object's description is its own."""
        if isinstance(status, StatusCode):
            status = Status(status, description)
        elif description is not None:
            _LOGGER.warning("Description %s ignored. Use either `Status` or `(StatusCode, Description)`", description)
        with self._lock:
            if (self._open("set the status") and self._status.status_code is not StatusCode.OK
                    and status.status_code is not StatusCode.UNSET):
                self._status = status

    def record_exception(self, exception: BaseException, attributes=None, timestamp: int | None = None,
                         escaped: bool = False) -> None:
        module, qualname = type(exception).__module__, type(exception).__qualname__
        recorded = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        self.add_event("exception", {**recorded, **(attributes or {})}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._end_time is not None:
                _LOGGER.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time if end_time is not None else time_ns()
        self._span_processor._on_ending(self)  # the SDK's hook before on_end, kept for processors that use it
        self._span_processor.on_end(self)  # no copy: nothing changes an ended span

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        if exc_val is not None and self.is_recording():
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()


class Tracer(trace.Tracer):
    """Starts Spans with the sampler, id generator, resource and span processors of an SDK tracer."""

    def __init__(self, sdk_tracer: sdk_trace.Tracer, name: str, version: str | None = None):
        self.sampler = sdk_tracer.sampler
        self.id_generator = sdk_tracer.id_generator
        self.resource = sdk_tracer.resource
        self.span_processor = sdk_tracer.span_processor
        self.instrumentation_info = sdk_tracer.instrumentation_info
        self.instrumentation_scope = InstrumentationScope(name, version)
        self.limits = SpanLimits()  # the OTEL_*_LIMIT settings, as the SDK's provider reads them

    def start_span(self, name: str, context: context_api.Context | None = None, kind: SpanKind = SpanKind.INTERNAL,
                   attributes=None, links: Sequence[Link] | None = (), start_time: int | None = None,
                   record_exception: bool = True, set_status_on_exception: bool = True) -> trace.Span:
        links = links or ()
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        if parent is None or not parent.is_valid:  # a root span: a new trace
            parent = None
            trace_id = self.id_generator.generate_trace_id()
            random = self.id_generator.is_trace_id_random()
        else:
            trace_id = parent.trace_id
            random = parent.trace_flags.random_trace_id
        decision = self.sampler.should_sample(context, trace_id, name, kind, attributes, links)
        span_context = SpanContext(trace_id, self.id_generator.generate_span_id(), is_remote=False,
                                   trace_flags=_FLAGS[decision.decision.is_sampled(), random],
                                   trace_state=decision.trace_state)
        if not decision.decision.is_recording():
            return trace.NonRecordingSpan(span_context)
        span = Span(name, span_context, parent, kind, decision.attributes, links, self, record_exception,
                    set_status_on_exception)
        span._start_time = start_time if start_time is not None else time_ns()
        self.span_processor.on_start(span, parent_context=context)
        return span

    @contextlib.contextmanager
    def start_as_current_span(self, name: str, context: context_api.Context | None = None,  # type: ignore[override]
                              kind: SpanKind = SpanKind.INTERNAL, attributes=None, links: Sequence[Link] | None = (),
                              start_time: int | None = None, record_exception: bool = True,
                              set_status_on_exception: bool = True, end_on_exit: bool = True) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception)
        with trace.use_span(span, end_on_exit=end_on_exit, record_exception=record_exception,
                            set_status_on_exception=set_status_on_exception) as current:
            yield current
