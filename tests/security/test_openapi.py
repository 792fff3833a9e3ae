"""The OpenAPI document is valid OpenAPI 3.1, tells the truth about what the server accepts and
refuses (schemathesis with every check finds nothing), lints clean, and serves /docs without a CDN."""

import json
import os
import pathlib
import subprocess

import pytest
import requests
from openapi_spec_validator import validate

from harness.servers import write_test_pki
from harness.stack import Stack


def test_the_document_validates_against_the_openapi_schema(stack):
    document = requests.get(f"{stack.url}/openapi.json", timeout=10).json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["paths"]["/v1/accounts/{id}"]["get"]["security"] == [{"oauth2": ["accounts.read"]}]
    assert document["paths"]["/v1/accounts"]["post"]["security"] == []
    # The edge's own endpoints are in the contract too, so the fuzzer below covers them.
    for path in ("/oauth2/token", "/oauth2/revoke", "/oauth2/authorize", "/.well-known/jwks.json",
                 "/.well-known/oauth-authorization-server", "/healthz", "/readyz"):
        assert path in document["paths"], path


def test_descriptions_come_from_the_proto_comments_in_rest_names(stack):
    document = requests.get(f"{stack.url}/openapi.json", timeout=10).json()
    assert document["paths"]["/v1/orders"]["post"]["description"].startswith("Places an order")
    status = document["components"]["schemas"]["shop.orders.v1.Order"]["properties"]["status"]
    assert "REJECTED: Refused when placed" in status["description"] and "statusReason says why" in status["description"]
    assert "status_reason" not in json.dumps(document)  # proto names are written as the REST API spells them
    assert document["components"]["schemas"]["shop.accounts.v1.Profile"]["properties"]["locale"]["description"]


REDOCLY = pathlib.Path(__file__).resolve().parents[2] / "tools" / "openapi" / "node_modules" / ".bin" / "redocly"


def test_redocly_finds_no_error_in_the_document(stack, tmp_path):
    """Redocly's recommended rules (pinned CLI, installed by make tools): no error. Its warnings are
    printed: a 4XX answer for the parameterless GETs (JWKS, metadata, health) and a license."""
    if not REDOCLY.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REDOCLY.parents[2],
                       check=True, timeout=300)
    document = tmp_path / "openapi.json"
    document.write_text(requests.get(f"{stack.url}/openapi.json", timeout=10).text)
    linted = subprocess.run([str(REDOCLY), "lint", str(document), "--format=json"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"})
    report = json.loads(linted.stdout)
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    print("redocly warnings:", sorted({p["ruleId"] for p in report["problems"] if p["severity"] == "warn"}))
    assert errors == [], json.dumps(errors, indent=1)[:3000]


def test_the_docs_page_is_served_without_a_cdn(stack):
    page = requests.get(f"{stack.url}/docs", timeout=10)
    assert page.status_code == 200 and "http" not in page.text.split("<body>")[1].replace("/openapi.json", "")
    assert requests.get(f"{stack.url}/docs/assets/swagger-ui-bundle.js", timeout=10).status_code == 200


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    """A stack of its own: the fuzzer deactivates accounts and changes passwords as an administrator."""
    running = Stack(write_test_pki(tmp_path_factory.mktemp("fuzz-pki")), tmp_path_factory.mktemp("fuzz-data"))
    yield running
    running.stop()


ROOT = pathlib.Path(__file__).resolve().parents[2]
# At least this many generated requests, over every operation of the document.
MIN_CASES = 3000


def test_schemathesis_with_every_check_and_every_phase_finds_no_failure(fuzz_stack, tmp_path):
    """The schemathesis CLI (pinned), as a user would run it against the served document: every
    check (a schema-valid request must be accepted, ST202; a schema-invalid one refused; responses,
    status codes, content types and headers as documented; no 5xx), every phase (examples, coverage,
    fuzzing, and stateful sequences that follow the document's links: create a product, then read,
    change, stock and archive it), with an administrator's token, a fixed seed so CI repeats itself.
    What it is told beyond the document is in tests/security/schemathesis.toml and
    schemathesis_hooks.py, each with its reason."""
    stack = fuzz_stack
    token = stack.token(*stack.admin)["access_token"]
    report_dir = tmp_path / "report"
    run = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "st") if (ROOT / ".venv" / "bin" / "st").exists() else "st",
         "--config-file", str(ROOT / "tests" / "security" / "schemathesis.toml"), "run", f"{stack.url}/openapi.json",
         "--url", stack.url, "-H", f"Authorization: Bearer {token}", "--checks", "all",
         "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "100", "--seed", "17", "--workers", "1",
         # Generation taking long is a property of the machine's load, not of the document.
         "--suppress-health-check", "too_slow",
         "--report", "json", "--report-dir", str(report_dir)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.security.schemathesis_hooks",
             "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "gen"), os.environ.get("PYTHONPATH", "")])})
    report = json.loads(next(report_dir.glob("*.json")).read_text())
    cases = report["test_cases"]
    print(f"schemathesis: {cases['generated']} cases over {report['operations']['tested']} operations, "
          f"{cases['with_failures']} failing, phases {({k: v['status'] for k, v in report['phases'].items()})}")
    assert run.returncode == 0 and not report["failures"] and not report["errors"], run.stdout[-12000:]
    assert report["operations"]["tested"] == report["operations"]["total"]
    assert cases["generated"] >= MIN_CASES
    # examples: the fields' declared examples (validation.v1.rules example) make whole requests.
    assert all(report["phases"][phase]["status"] == "success" for phase in ("examples", "coverage", "fuzzing", "stateful"))
