"""Log lines on stdout: JSON (timestamp, level, service, trace_id, span_id, request_id, message)
for containers and files, or, with LOG_FORMAT=text (what `make up` sets), one short line a person
reads in a terminal:

    12:26:23.906 INFO  accounts  accounts listening on 127.0.0.1:15051 (mTLS)
    12:26:31.102 INFO  edge      GET /v1/products 200 4.1 ms  trace=4bf92f35...  request=9a1c...

A last line of defence scrubs bearer tokens, JWTs and password fields from every message,
so a careless log call cannot leak a secret.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime

from opentelemetry import trace

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_SECRETS = [
    (re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[jwt redacted]"),
    (re.compile(r"(?i)((?:password|secret|refresh_token|client_secret)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"), r"\1[redacted]"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), "[private key redacted]"),
]


def scrub(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        context = trace.get_current_span().get_span_context()
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "trace_id": format(context.trace_id, "032x") if context.is_valid else "",
            "span_id": format(context.span_id, "016x") if context.is_valid else "",
            "request_id": getattr(record, "request_id", "") or request_id_var.get(),
        }
        for key in ("http", "rpc"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One line per record for a terminal; the same fields as the JSON lines, scrubbed the same way."""

    def __init__(self, service: str):
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        context = trace.get_current_span().get_span_context()
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        message = scrub(record.getMessage())
        http = getattr(record, "http", None)
        if isinstance(http, dict) and "duration_ms" in http:
            message += f" {http['duration_ms']:.1f} ms"
        extras = []
        if context.is_valid:
            extras.append(f"trace={format(context.trace_id, '032x')}")
        request_id = getattr(record, "request_id", "") or request_id_var.get()
        if request_id:
            extras.append(f"request={request_id}")
        line = f"{when} {record.levelname:<7} {self._service:<9} {message}" + ("  " + " ".join(extras) if extras else "")
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def configure_logging(service: str, level: str = "INFO", log_format: str = "json") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(FORMATTERS[log_format](service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Cassandra driver is chatty about metadata on old servers; its warnings stay, its info goes.
    logging.getLogger("cassandra").setLevel(logging.WARNING)
