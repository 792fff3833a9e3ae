"""What a process of the stack logged: its JSON lines, and the trace id the edge gave a request."""

from __future__ import annotations

import json

from harness.shop import wait_for


def json_lines(process) -> list[dict]:
    """The process's output lines that are JSON log records (gunicorn's own start-up lines are plain text)."""
    parsed = []
    for line in list(process.lines):
        try:
            parsed.append(json.loads(line))
        except ValueError:
            continue
    return parsed


def access_trace_id(stack, request_id: str) -> str:
    """The trace id in the edge's access log line for the request (read from the edge's stdout,
    which reaches us a moment after the response does)."""
    def access():
        return [e for e in json_lines(stack.edge) if e.get("request_id") == request_id and e.get("logger") == "edge.access"]

    assert wait_for(access, 10) and access()[0]["trace_id"], "the edge's access log line carries the trace id"
    return access()[0]["trace_id"]
