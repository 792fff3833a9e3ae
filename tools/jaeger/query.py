"""A small client of Jaeger's query API v3 over HTTP (`/api/v3/...`), which answers in OTLP's JSON.

    client = QueryClient("http://127.0.0.1:16686")
    spans = client.trace("5b8efff798038103d269b633813fc60c")          # [] if Jaeger has none
    traces = client.find_traces("orders", since=an_hour_ago, until=now)  # {trace id: [Span, ...]}

Spans come back flat, each with its service, OTLP kind and status code, and its attributes as plain
Python values; callers rebuild the tree from `parent_span_id`. Tests and tools/devstack share it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime

SERVER, CLIENT = 2, 3  # OTLP span kinds (1 internal, 4 producer, 5 consumer)
ERROR = 2  # OTLP status code (0 unset, 1 ok)


@dataclass(frozen=True)
class Span:
    service: str
    scope: str  # the instrumentation scope that made it
    name: str
    kind: int
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root
    attributes: dict
    status_code: int
    start_ns: int
    linked_trace_ids: tuple[str, ...] = ()  # the traces its links point to


class QueryClient:
    def __init__(self, base_url: str, timeout: float = 10):
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout

    def answers(self) -> bool:
        """True once the query API serves requests."""
        try:
            self.services()
            return True
        except (OSError, RuntimeError, ValueError):  # not listening yet, or not answering queries yet
            return False

    def services(self) -> list[str]:
        """Every service name Jaeger has spans of."""
        return sorted(self._get("/api/v3/services").get("services") or [])

    def trace(self, trace_id: str) -> list[Span]:
        """Every span Jaeger holds of one trace, in no particular order ([] when it holds none)."""
        return _spans(self._get(f"/api/v3/traces/{trace_id}"))

    def find_traces(self, service: str, since: datetime, until: datetime, *, operation: str = "",
                    limit: int = 100) -> dict[str, list[Span]]:
        """Up to `limit` traces with a span of `service` (and `operation`, if given) that started in
        [since, until] (aware datetimes), each with all its spans, by trace id."""
        query = {"query.service_name": service, "query.start_time_min": since.isoformat(),
                 "query.start_time_max": until.isoformat(), "query.num_traces": str(limit)}
        if operation:
            query["query.operation_name"] = operation
        traces: dict[str, list[Span]] = {}
        for span in _spans(self._get("/api/v3/traces?" + urllib.parse.urlencode(query))):
            traces.setdefault(span.trace_id, []).append(span)
        return traces

    def _get(self, path: str) -> dict:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=self._timeout) as reply:
                return json.load(reply)
        except urllib.error.HTTPError as error:
            if error.code == 404:  # v3's answer when no trace matches
                return {}
            raise RuntimeError(f"Jaeger answered {error.code} to {path}: {error.read()[:300]!r}") from None


def _spans(document: dict) -> list[Span]:
    spans = []
    for resource_spans in (document.get("result") or {}).get("resourceSpans", []):
        resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope = scope_spans.get("scope", {}).get("name", "")
            for span in scope_spans.get("spans", []):
                spans.append(Span(
                    service=resource.get("service.name", ""), scope=scope, name=span["name"], kind=span.get("kind", 0),
                    trace_id=span["traceId"], span_id=span["spanId"], parent_span_id=span.get("parentSpanId", ""),
                    attributes=_attributes(span.get("attributes", [])),
                    status_code=span.get("status", {}).get("code", 0), start_ns=int(span.get("startTimeUnixNano", 0)),
                    linked_trace_ids=tuple(link["traceId"] for link in span.get("links", []))))
    return spans


def _attributes(pairs: list[dict]) -> dict:
    return {pair["key"]: _value(pair.get("value", {})) for pair in pairs}


def _value(value: dict):
    """An OTLP AnyValue in JSON as a Python value (int64s arrive as strings)."""
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    for kind in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if kind in value:
            return value[kind]
    return None
