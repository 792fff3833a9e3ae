"""Spans of store statements (Cassandra and SQLite), after OpenTelemetry's database conventions:
one CLIENT span per statement, lasting from its start to its result or its error.

    statement = describe(CASSANDRA, "catalog", "SELECT id FROM catalog.products WHERE id = ?")  # once
    span = start(statement)
    if span is None:                 # nothing would record it (untraced, not sampled): run it bare
        return run_it()
    try:
        result = run_it()            # then, on the span, what the result says (rows, applied, node)
    except Exception as error:
        failed(span, error)
        raise
    finally:
        span.end()

runtime/cassandra.py and runtime/sqlite.py run every statement of the stores this way. A span is
named `{db.operation.name} {db.collection.name}` (`SELECT products`; `BEGIN catalog.sqlite3`
when no table is named) and carries `db.system.name` (and the older `db.system`, which searches
saved against the contrib instrumentation's spans look for), `db.namespace` (the keyspace, or the
SQLite file's name), `db.operation.name`, `db.collection.name` and `db.query.text`: the text with
its `?` placeholders, never a bound value. All of that is worked out once per statement
(`describe` is cached); per call only the span itself is made.

A statement under an unsampled parent (`observability.tracing.untraced()`) gets no span,
whatever the sampler says; without a parent the tracer's sampler decides, as for any root span.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from observability.tracing import tracer

CASSANDRA, SQLITE = "cassandra", "sqlite"
# The first table a statement names: after FROM, INTO, UPDATE or TABLE [IF [NOT] EXISTS], without its keyspace.
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|TABLE)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?:\w+\.)?(\w+)", re.IGNORECASE)
_CONDITION = re.compile(r"\bIF\b", re.IGNORECASE)
_CLIENT = SpanKind.CLIENT


@dataclass(frozen=True)
class Statement:
    """What every span of one statement says about it."""

    name: str
    operation: str
    conditional: bool  # a lightweight transaction (CQL `IF ...`): its span says whether it applied
    attributes: Mapping[str, AttributeValue]


def _target(text: str) -> tuple[str, str | None]:
    operation = text.split(None, 1)[0] if text.strip() else "UNKNOWN"
    table = _TABLE.search(text)
    return operation, table.group(1) if table else None


def _statement(operation: str, table: str | None, system: str, namespace: str, text: str,
               fixed: Mapping[str, AttributeValue]) -> Statement:
    attributes: dict[str, AttributeValue] = {"db.system.name": system, "db.system": system, "db.namespace": namespace,
                                             "db.operation.name": operation, "db.query.text": text}
    if table:
        attributes["db.collection.name"] = table
    attributes.update(fixed)
    return Statement(f"{operation} {table or namespace}", operation, bool(_CONDITION.search(text)),
                     MappingProxyType(attributes))


@functools.lru_cache(maxsize=1024)
def describe(system: str, namespace: str, text: str, **fixed: AttributeValue) -> Statement:
    """The span description of one statement's text, with `fixed` attributes of its own (a
    statement's consistency level). Cached: call it per statement, or per call of a text."""
    operation, table = _target(text)
    return _statement(operation, table, system, namespace, text, fixed)


@functools.lru_cache(maxsize=256)
def describe_batch(system: str, namespace: str, texts: tuple[str, ...], **fixed: AttributeValue) -> Statement:
    """The span description of a batch of statements sent as one (a batch of one is that statement)."""
    if len(texts) == 1:
        return describe(system, namespace, texts[0], **fixed)
    targets = {_target(text) for text in texts}
    operations, tables = {op for op, _ in targets}, {table for _, table in targets}
    operation = f"BATCH {operations.pop()}" if len(operations) == 1 else "BATCH"
    text = texts[0] if len(set(texts)) == 1 else "; ".join(texts)
    return _statement(operation, tables.pop() if len(tables) == 1 else None, system, namespace, text,
                      {"db.operation.batch.size": len(texts), **fixed})


def start(statement: Statement) -> Span | None:
    """Starts the statement's span (not made current: nothing runs inside it), or None when it would
    not be recorded."""
    parent = trace.get_current_span().get_span_context()
    if parent.is_valid and not parent.trace_flags.sampled:
        return None
    span = tracer().start_span(statement.name, kind=_CLIENT, attributes=statement.attributes)
    return span if span.is_recording() else None


def error_type(error: BaseException) -> str:
    """`error.type` of an exception: its class's qualified name (`cassandra.InvalidRequest`)."""
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def failed(span: Span, error: BaseException, status_code: str | None = None) -> None:
    """Marks a statement's span as failed: ERROR status, `error.type`, the exception as an event and,
    when the store gave one, its own code (`db.response.status_code`)."""
    kind = error_type(error)
    span.set_attribute("error.type", kind)
    if status_code is not None:
        span.set_attribute("db.response.status_code", status_code)
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, kind))
