"""LOG_FORMAT: JSON lines for containers and files, one readable line for a terminal; both scrub secrets."""

import json
import logging

import pytest

from observability.logs import JsonFormatter, TextFormatter
from runtime.settings import ConfigError, Env, TelemetrySettings


def _record(message: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord("edge.access", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_a_text_line_has_time_level_service_message_and_duration():
    line = TextFormatter("edge").format(_record("GET /v1/products 200", http={"duration_ms": 4.06}, request_id="r1"))
    assert line.split(" ", 1)[1] == "INFO    edge      GET /v1/products 200 4.1 ms  request=r1"


def test_both_formats_scrub_secrets():
    secret = "password=hunter2hunter2 and Bearer eyJabc.def.ghi"
    for formatter in (TextFormatter("accounts"), JsonFormatter("accounts")):
        line = formatter.format(_record(secret))
        assert "hunter2" not in line and "eyJabc" not in line


def test_json_stays_the_default_and_a_bad_format_stops_the_start():
    assert TelemetrySettings.from_env(Env({}), "edge").log_format == "json"
    assert TelemetrySettings.from_env(Env({"LOG_FORMAT": "text"}), "edge").log_format == "text"
    with pytest.raises(ConfigError):
        TelemetrySettings.from_env(Env({"LOG_FORMAT": "xml"}), "edge")
    json.loads(JsonFormatter("edge").format(_record("hello")))
