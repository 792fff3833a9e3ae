"""Spans finished in this process, for tests of what telemetry says: the OpenTelemetry SDK behind
the global tracer provider (installed on first use, sampling every trace that has no unsampled
parent), and a span processor that keeps only the spans a test asked for.

    with traced() as spans:          # the block runs under a sampled span of a trace of its own
        store.get_product("p1")
    [s.name for s in spans]          # that trace's spans, in the order they ended (the test's own last)

    with everything() as spans:      # every span that ends during the block, whatever its trace
        ...

Nothing else is kept, so the rest of the session may make spans freely.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

_ANY = 0  # not a trace id: the key of the lists that take every span


class _Keeper(SpanProcessor):
    def __init__(self):
        self._lock = threading.Lock()
        self._lists: dict[int, list[list[ReadableSpan]]] = {}

    def keep(self, trace_id: int) -> list[ReadableSpan]:
        kept: list[ReadableSpan] = []
        with self._lock:
            self._lists.setdefault(trace_id, []).append(kept)
        return kept

    def stop(self, trace_id: int, kept: list[ReadableSpan]) -> None:
        with self._lock:
            self._lists[trace_id].remove(kept)

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            for kept in self._lists.get(span.context.trace_id, []) + self._lists.get(_ANY, []):
                kept.append(span)


_KEEPER: _Keeper | None = None
_INSTALL = threading.Lock()


def _keeper() -> _Keeper:
    global _KEEPER
    with _INSTALL:
        if _KEEPER is None:
            provider = trace.get_tracer_provider()
            if not isinstance(provider, TracerProvider):
                provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
                trace.set_tracer_provider(provider)
            _KEEPER = _Keeper()
            provider.add_span_processor(_KEEPER)
        return _KEEPER


@contextlib.contextmanager
def traced(name: str = "test") -> Iterator[list[ReadableSpan]]:
    """Runs the block under a sampled span `name` of a new trace; yields the list its trace's
    finished spans are appended to (until the block ends)."""
    keeper = _keeper()
    # No parent: a root span, so a new trace (whatever span the caller is in).
    parent = trace.get_tracer("tests").start_span(name, context=trace.set_span_in_context(trace.INVALID_SPAN))
    trace_id = parent.get_span_context().trace_id
    kept = keeper.keep(trace_id)
    try:
        with trace.use_span(parent, end_on_exit=False):
            yield kept
    finally:
        parent.end()
        keeper.stop(trace_id, kept)


@contextlib.contextmanager
def everything() -> Iterator[list[ReadableSpan]]:
    """Yields the list every span that ends during the block is appended to."""
    keeper = _keeper()
    kept = keeper.keep(_ANY)
    try:
        yield kept
    finally:
        keeper.stop(_ANY, kept)


def store_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """The spans of store statements (any with `db.system.name`)."""
    return [s for s in spans if s.attributes and "db.system.name" in s.attributes]
