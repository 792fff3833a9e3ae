"""OTLP span export without protobuf objects: finished spans written straight to the wire format.

    exporter = SpanExporter()     # the OTLP/gRPC exporter of opentelemetry-exporter-otlp-proto-grpc,
                                  # with the same OTEL_EXPORTER_OTLP_* settings, retries and TLS

The SDK's exporter builds an ExportTraceServiceRequest one message at a time (a KeyValue and an
AnyValue per attribute, a Span per span, then serializes them all), and groups spans by resource with
Resource.__hash__, which JSON-dumps every resource attribute for each span. That was about 80 us of a
span's ~100 us in a process that serves requests (docs/benchmarks.md, "What a span costs").
`encode_spans` writes the same bytes the protobuf message would serialize to (field for field, so a
collector cannot tell them apart; tests/unit/test_otlp_encoding.py parses both and compares), and
`SpanExporter` is the SDK's gRPC exporter sending those bytes as they are, in place of the message it
would have built.

Only what spans carry is written: resource and scope per group, then per span its ids, trace state,
name, kind, times, attributes (str, bool, int, float, bytes, sequences and mappings of them, as the
SDK allows), events, links, status, dropped counts and flags.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

# Wire types (https://protobuf.dev/programming-guides/encoding/) and the tags used here, made once.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_FLAGS_HAS_IS_REMOTE, _FLAGS_IS_REMOTE = 0x100, 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_(HAS_)IS_REMOTE_MASK
_pack_double, _pack_u64, _pack_u32 = struct.Struct("<d").pack, struct.Struct("<Q").pack, struct.Struct("<I").pack
_LOCAL_FLAGS = b"\x85\x01" + _pack_u32(_FLAGS_HAS_IS_REMOTE)  # Span.flags (16, fixed32) of a local parent
_REMOTE_FLAGS = b"\x85\x01" + _pack_u32(_FLAGS_HAS_IS_REMOTE | _FLAGS_IS_REMOTE)
_BYTE = [bytes((n,)) for n in range(128)]  # the varints of 0..127: one byte each
_KEYS: dict[str, bytes] = {}  # attribute key -> its encoded KeyValue.key field; keys are few and repeat
_MAX_KEYS = 10_000
# What repeats from span to span, kept encoded (_kept): (key, value) -> its KeyValue and length, one
# table for text values and one for integers (True == 1, so they must not share one); span names;
# statuses. Each table holds at most _MAX_KEPT entries and is emptied when full.
_PAIRS: dict[tuple[str, str], bytes] = {}
_INT_PAIRS: dict[tuple[str, int], bytes] = {}
_MAX_KEPT = 4096
_NAMES: dict[str, bytes] = {}  # span name -> its Span.name field; names are routes, methods, statements
_STATUSES: dict[tuple, bytes] = {}  # (status code, description) -> its Span.status field
_KINDS = {kind: b"\x30" + _BYTE[kind.value + 1] for kind in SpanKind}  # SpanKind INTERNAL=0.. -> SPAN_KIND_INTERNAL=1..
_pack_times = struct.Struct("<BQBQ").pack  # Span.start_time_unix_nano (7) and end_time_unix_nano (8), fixed64


def _varint(value: int) -> bytes:
    if value < 0x80:
        if value >= 0:
            return _BYTE[value]
        value += 1 << 64  # int64: two's complement in ten bytes
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _len(field: int, payload: bytes) -> bytes:
    return _tag(field, _LEN) + _varint(len(payload)) + payload


def _str(field: int, text: str | None) -> bytes:
    """A string field, left out when empty (proto3 has no presence for it)."""
    return _len(field, text.encode()) if text else b""


def _uint(field: int, value: int) -> bytes:
    return _tag(field, _VARINT) + _varint(value) if value else b""


def _any_value(value) -> bytes:
    """An AnyValue: its one field is written even when zero (a oneof has presence)."""
    kind = type(value)  # the exact types first: nearly every value is one of them
    if kind is str or isinstance(value, str):
        data = value.encode()
        size = len(data)
        return b"\x0a" + (_BYTE[size] if size < 0x80 else _varint(size)) + data
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        return b"\x18" + _varint(value)
    if kind is float:
        return b"\x21" + _pack_double(value)
    if isinstance(value, bytes):
        return _len(7, value)
    if isinstance(value, int | float):  # a subclass (an IntEnum member, say): as its base type
        return _any_value(int(value) if isinstance(value, int) else float(value))
    if isinstance(value, Sequence):
        return _len(5, b"".join(_len(1, _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _len(6, b"".join(_len(1, _key_value(str(k), v)) for k, v in value.items()))
    if value is None:
        return b""
    raise TypeError(f"cannot encode an attribute value of type {type(value).__name__}")


def _key(key: str) -> bytes:
    encoded = _KEYS.get(key)
    if encoded is None:
        encoded = _str(1, key)
        if len(_KEYS) < _MAX_KEYS:
            _KEYS[key] = encoded
    return encoded


def _key_value(key: str, value) -> bytes:
    value_bytes = _any_value(value)
    size = len(value_bytes)
    return (_KEYS.get(key) or _key(key)) + b"\x12" + (_BYTE[size] if size < 0x80 else _varint(size)) + value_bytes


def _pair(key: str, value) -> bytes:
    """A KeyValue with its length before it (the field's tag is the caller's). The pairs of text and
    integer values are kept: most repeat from span to span (a method, a route, a status code)."""
    kind = type(value)
    table = _PAIRS if kind is str else _INT_PAIRS if kind is int else None
    if table is None:
        return _length_and_pair((key, value))
    return table.get((key, value)) or _kept(table, (key, value), _length_and_pair)


def _length_and_pair(item: tuple[str, object]) -> bytes:
    pair = _key_value(*item)
    size = len(pair)
    return (_BYTE[size] if size < 0x80 else _varint(size)) + pair


def _kept(table: dict, key, make) -> bytes:
    """table[key], made by make(key) the first time; a full table is emptied first (values that never
    repeat, a path with an id in it, would otherwise fill it for good)."""
    encoded = table.get(key)
    if encoded is None:
        encoded = make(key)
        if len(table) >= _MAX_KEPT:
            table.clear()
        table[key] = encoded
    return encoded


def _attributes(tag: bytes, attributes) -> bytes:
    """Every attribute as a KeyValue field whose tag is `tag`."""
    if not attributes:
        return b""
    out: list[bytes] = []
    for key, value in attributes.items():
        out += (tag, _pair(key, value))
    return b"".join(out)


def _flags(context) -> bytes:
    return _REMOTE_FLAGS if context is not None and context.is_remote else _LOCAL_FLAGS


def _status(status: tuple) -> bytes:
    """The Span.status field of (status code, description)."""
    return _len(15, _str(2, status[1]) + _uint(3, status[0].value))


def _span(span: ReadableSpan) -> bytes:
    context, parent = span.context, span.parent
    assert context is not None  # a span the SDK finished always has its context
    parts = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"), b"\x12\x08", context.span_id.to_bytes(8, "big")]
    if context.trace_state:
        parts.append(_str(3, ",".join(f"{k}={v}" for k, v in context.trace_state.items())))
    if parent is not None:
        parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    parts += (_NAMES.get(span.name) or _kept(_NAMES, span.name, lambda name: _str(5, name)), _KINDS[span.kind],
              _pack_times(0x39, span.start_time or 0, 0x41, span.end_time or 0), _attributes(b"\x4a", span.attributes))
    if dropped := span.dropped_attributes:
        parts.append(_uint(10, dropped))
    for event in span.events:
        parts.append(_len(11, b"\x09" + _pack_u64(event.timestamp) + _str(2, event.name)
                          + _attributes(b"\x1a", event.attributes) + _uint(4, event.dropped_attributes)))
    if dropped := span.dropped_events:
        parts.append(_uint(12, dropped))
    for link in span.links:
        parts.append(_len(13, b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big")
                          + b"\x12\x08" + link.context.span_id.to_bytes(8, "big")
                          + _attributes(b"\x22", link.attributes) + _uint(5, link.dropped_attributes)
                          + b"\x35" + _flags(link.context)[2:]))
    if dropped := span.dropped_links:
        parts.append(_uint(14, dropped))
    status = span.status
    parts += (_kept(_STATUSES, (status.status_code, status.description), _status), _flags(parent))
    return b"".join(parts)


def _scope(scope) -> bytes:
    if scope is None:
        return b""
    return _str(1, scope.name) + _str(2, scope.version) + _attributes(b"\x1a", scope.attributes)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ExportTraceServiceRequest for `spans`, grouped by resource, then scope, in the
    order they first appear (as the SDK's encoder groups them)."""
    # Resources by identity (a provider has one; hashing one dumps its attributes as JSON), scopes by value.
    groups: dict[int, tuple] = {}  # id(resource) -> (resource, {scope: [span bytes]})
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope or None
        _, scopes = groups.setdefault(id(resource), (resource, {}))
        scopes.setdefault(scope, []).append(_span(span))
    out = []
    for resource, scopes in groups.values():
        scope_spans = b"".join(
            _len(2, _len(1, _scope(scope)) + b"".join(_len(2, s) for s in encoded)
                 + _str(3, scope.schema_url if scope is not None else None))
            for scope, encoded in scopes.items())
        out.append(_len(1, _len(1, _attributes(b"\x0a", resource.attributes)) + scope_spans + _str(3, resource.schema_url)))
    return b"".join(out)


class _TraceService:
    """A TraceService stub whose Export takes the serialized request as it is."""

    def __init__(self, channel):
        self.Export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString)


class SpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC span exporter (endpoint, TLS, headers, compression, timeout and retries from
    the standard settings) sending `encode_spans`' bytes instead of a message it builds."""

    def _initialize_channel_and_stub(self):
        super()._initialize_channel_and_stub()  # also after UNAVAILABLE, when the exporter makes a new channel
        self._client = _TraceService(self._channel)  # type: ignore[assignment]  # the SDK annotates it as None

    def _translate_data(self, data):
        return encode_spans(data)
