"""Whose trace context the edge continues (observability/http.caller_context): a trusted caller's, as
it is (so an operator can force one trace with a sampled traceparent); anyone else's request starts a
trace of its own, linked to the caller's."""

from __future__ import annotations

import ipaddress

from opentelemetry import trace

from observability.http import caller_context

THEIRS = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{THEIRS}-00f067aa0ba902b7-01"
TRUSTED = (ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("::1/128"))


def _environ(address: str, traceparent: str | None = TRACEPARENT) -> dict:
    return {"REMOTE_ADDR": address, **({"HTTP_TRACEPARENT": traceparent} if traceparent else {})}


def _parent(parent) -> trace.SpanContext:
    return trace.get_current_span(parent).get_span_context()


def test_a_trusted_callers_context_is_continued_with_its_sampled_flag():
    for address in ("10.1.200.3", "::1"):
        parent, links = caller_context(_environ(address), TRUSTED)
        assert f"{_parent(parent).trace_id:032x}" == THEIRS and _parent(parent).trace_flags.sampled
        assert links == []


def test_anyone_elses_request_starts_its_own_trace_linked_to_theirs():
    for address in ("10.2.0.1", "127.0.0.1", "", "unix-socket"):
        parent, links = caller_context(_environ(address), TRUSTED)
        assert not _parent(parent).is_valid, "a new root: the sampler decides, not the caller"
        assert [f"{link.context.trace_id:032x}" for link in links] == [THEIRS]


def test_nobody_is_trusted_by_default_and_no_traceparent_means_no_link():
    parent, links = caller_context(_environ("127.0.0.1"), ())
    assert not _parent(parent).is_valid and len(links) == 1
    parent, links = caller_context(_environ("10.1.0.1", traceparent=None), TRUSTED)
    assert not _parent(parent).is_valid and links == []
    parent, links = caller_context(_environ("10.2.0.1", traceparent="00-garbage-01"), TRUSTED)
    assert not _parent(parent).is_valid and links == []
