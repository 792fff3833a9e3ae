"""A service added the way docs/architecture.md says: a proto, a servicer, and an entry in the
registry. Here a throwaway `notes` service is generated from a tiny proto into a temporary folder,
compiled with grpcio-tools, added to a copy of services/workloads.toml, and run through the whole
stack: the dev PKI certifies it, accounts grants its new scope to the roles its proto names, the
edge transcodes its REST route and checks that scope, it fetches the token keys and account
standings from accounts (policies that name every service), and an operator reaches it with grpcurl
over mTLS. Nothing in the repository is edited for it."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests
from grpc_tools import protoc

from harness import servers
from harness.stack import Stack
from runtime import pki
from services.registry import FILE as REGISTRY_FILE
from tools import genproto, gotools

PROTO = """
syntax = "proto3";
package notes.v1;
import "access/v1/access.proto";
import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "validation/v1/validation.proto";

// Notes, kept by nobody: the service only answers with what it was sent, reversed.
service NotesService {
  option (access.v1.scopes) = {
    scopes: [{name: "notes.read" description: "Have notes reversed." granted_to: ["customer", "admin"]}]
  };

  rpc ReverseNote(ReverseNoteRequest) returns (Note) {
    option (google.api.http) = {post: "/v1/notes:reverse" body: "*"};
    option (access.v1.policy) = {scopes: ["notes.read"] callers: ["edge", "operator"]};
  }
}

message ReverseNoteRequest {
  string text = 1 [(google.api.field_behavior) = REQUIRED, (validation.v1.rules) = {max_len: 20}];
}

message Note {
  string text = 1;
  string author = 2;
}
"""

SERVICE = '''
"""The notes service: a servicer and its wiring, nothing else."""
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.interceptors import current_claims
from runtime.server import Wiring, in_order, run_service, serve
from runtime.settings import Env, ServerSettings
from services.common.callers import CallerSettings, remote_caller_checks
from services.registry import server_settings
from notes.v1 import notes_pb2, notes_pb2_grpc



class NotesServicer(notes_pb2_grpc.NotesServiceServicer):
    def ReverseNote(self, request, context):
        return notes_pb2.Note(text=request.text[::-1], author=current_claims().subject)


@dataclass(frozen=True)
class NotesSettings:
    server: ServerSettings
    callers: CallerSettings


def load_settings(environ: Mapping[str, str] | None = None) -> NotesSettings:
    return NotesSettings(server_settings("notes", environ), CallerSettings.from_env(Env(environ)))


def create_server(settings: NotesSettings):
    checks, close = remote_caller_checks(settings.callers, settings.server.tls)
    servicer = NotesServicer()
    return serve(settings.server, Wiring(
        descriptors=[notes_pb2.DESCRIPTOR.services_by_name["NotesService"]],
        register=lambda server: notes_pb2_grpc.add_NotesServiceServicer_to_server(servicer, server),
        ready_check=lambda: None, on_stop=in_order(close), checks=checks))


if __name__ == "__main__":
    sys.exit(run_service(load_settings, create_server))
'''

ENTRY = """
[[service]]
name = "notes"
grpc = "notes.v1.NotesService"
port = 50099
metrics_port = 9199
calls = ["accounts"]
module = "notes_service"
"""


@pytest.fixture(scope="module")
def notes_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("notes")
    (root / "proto" / "notes" / "v1").mkdir(parents=True)
    (root / "proto" / "notes" / "v1" / "notes.proto").write_text(PROTO)
    (root / "gen").mkdir()
    includes = [f"-I{directory}" for directory in [root / "proto", *genproto.include_dirs()]]
    assert protoc.main(["grpc_tools.protoc", *includes, f"--python_out={root / 'gen'}",
                        f"--grpc_python_out={root / 'gen'}", "notes/v1/notes.proto"]) == 0
    (root / "notes_service").mkdir()
    (root / "notes_service" / "__main__.py").write_text(SERVICE)
    registry_file = root / "workloads.toml"
    registry_file.write_text(REGISTRY_FILE.read_text() + ENTRY)
    pki_dir = servers.write_test_pki(tmp_path_factory.mktemp("pki"))
    pki.write_dev_pki(pki_dir, servers.TRUST_DOMAIN, ("notes",))  # completes the PKI: one more identity
    stack = Stack(pki_dir, tmp_path_factory.mktemp("data"), workloads_file=registry_file,
                  python_path=(root / "gen", root),
                  # A standing asked on every call, so a deactivation shows at once (not after 5 s).
                  service_env={"notes": {"ACCOUNT_ACTIVE_CHECK_SECONDS": "0"}})
    yield stack
    stack.stop()


def _reverse(stack: Stack, token: str | None, body: dict) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{stack.url}/v1/notes:reverse", json=body, headers=headers, timeout=10)


def test_the_new_service_answers_through_the_edge_with_the_callers_identity(notes_stack):
    account = notes_stack.register("notewriter")
    issued = notes_stack.token("notewriter")
    assert "notes.read" in issued["scope"].split()  # granted to customers by the notes proto alone
    token = issued["access_token"]
    reply = _reverse(notes_stack, token, {"text": "stressed"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"text": "desserts", "author": account["id"]}


def test_its_scope_its_field_rules_and_its_route_are_the_edges_like_any_other(notes_stack):
    notes_stack.register("notereader")
    token = notes_stack.token("notereader")["access_token"]
    assert _reverse(notes_stack, None, {"text": "x"}).status_code == 401
    narrow = notes_stack.token("notereader", scope="orders.read")["access_token"]
    assert _reverse(notes_stack, narrow, {"text": "x"}).status_code == 403
    too_long = _reverse(notes_stack, token, {"text": "x" * 21})
    assert too_long.status_code == 400 and too_long.headers["Content-Type"] == "application/problem+json"
    document = requests.get(f"{notes_stack.url}/openapi.json", timeout=10).json()
    assert "/v1/notes:reverse" in document["paths"]
    assert "notes.read" in document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"]


def test_a_deactivated_account_is_refused_by_the_new_service_too(notes_stack):
    account = notes_stack.register("noteleaver")
    token = notes_stack.token("noteleaver")["access_token"]
    assert _reverse(notes_stack, token, {"text": "ab"}).status_code == 200
    assert requests.post(f"{notes_stack.url}/v1/accounts/{account['id']}:deactivate", json={}, timeout=10,
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200
    refused = _reverse(notes_stack, token, {"text": "ab"})
    assert (refused.status_code, refused.json()["reason"]) == (403, "ACCOUNT_DEACTIVATED"), refused.text


def test_an_operator_lists_and_checks_it_with_grpcurl(notes_stack):
    port = notes_stack.processes["notes"][0].port
    tls = ["-cacert", str(notes_stack.pki_dir / "ca.pem"), "-cert", str(notes_stack.pki_dir / "operator.pem"),
           "-key", str(notes_stack.pki_dir / "operator.key"), "-max-time", "10"]
    grpcurl = str(gotools.ensure("grpcurl"))
    listed = subprocess.run([grpcurl, *tls, f"127.0.0.1:{port}", "list"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert "notes.v1.NotesService" in listed.stdout.split()
    health = subprocess.run([grpcurl, *tls, f"127.0.0.1:{port}", "grpc.health.v1.Health/Check"],
                            capture_output=True, text=True, timeout=30)
    assert json.loads(health.stdout) == {"status": "SERVING"}
