"""Text that would be stored and shown to someone later: the services own its rules, so a caller
that skips the edge (a gRPC client with a certificate) meets the same refusal, field by field, as a
REST client (docs/security.md, "input rules in the service")."""

from __future__ import annotations

import uuid

import grpc
import pytest
import requests
from google.protobuf import field_mask_pb2

from harness import servers
from shop.accounts.v1 import accounts_pb2, accounts_pb2_grpc

_HOSTILE_EMAILS = ["nul\x00@example.com", "\x1b[2Jwipe@example.com", "moc.elpmaxe\u202e@example.com",
                   "<script>alert(1)</script>@example.com", '"quoted"@example.com']
_HOSTILE_LINES = ["esc\x1b[31m", "nul\x00", "right-to-left\u202eoverride", "isolate\u2066x", "two\nlines"]


def _grpc_refusal(stack, call: str, request, token: str | None = None) -> tuple[str, set[str]]:
    metadata = servers.bearer(token) if token else None
    with servers.channel(stack.pki_dir, stack.accounts.port, "edge") as channel, pytest.raises(grpc.RpcError) as refused:
        getattr(accounts_pb2_grpc.AccountsServiceStub(channel), call)(request, timeout=10, metadata=metadata)
    return refused.value.code().name, _named_fields(refused.value.details())


def _named_fields(details: str) -> set[str]:
    """The fields a refusal's message names (`field: description; ...`)."""
    return {part.split(":", 1)[0].strip() for part in details.split(";") if ":" in part}


@pytest.mark.parametrize("email", _HOSTILE_EMAILS)
def test_an_email_with_controls_overrides_or_markup_is_refused_by_the_edge_and_by_accounts(stack, email):
    name = f"u{uuid.uuid4().hex[:12]}"
    rest = requests.post(f"{stack.url}/v1/accounts", json={"username": name, "email": email,
                                                          "password": servers.PASSWORD}, timeout=10)
    assert rest.status_code == 400 and [v["field"] for v in rest.json()["violations"]] == ["email"], rest.text
    code, fields = _grpc_refusal(stack, "CreateAccount", accounts_pb2.CreateAccountRequest(
        username=name, email=email, password=servers.PASSWORD))
    assert (code, fields) == ("INVALID_ARGUMENT", {"email"})
    assert requests.post(f"{stack.url}/oauth2/token", data={"grant_type": "password", "username": name,
                                                            "password": servers.PASSWORD}, timeout=10).status_code == 400


@pytest.mark.parametrize("text", _HOSTILE_LINES)
def test_a_display_name_with_controls_or_overrides_is_refused_by_the_edge_and_by_accounts(stack, text):
    name = f"u{uuid.uuid4().hex[:12]}"
    account = stack.register(name)
    token = stack.token(name)["access_token"]
    rest = requests.patch(f"{stack.url}/v1/accounts/{account['id']}", json={"displayName": text},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert rest.status_code == 400 and [v["field"] for v in rest.json()["violations"]] == ["profile.displayName"], rest.text
    code, fields = _grpc_refusal(stack, "UpdateAccount", accounts_pb2.UpdateAccountRequest(
        id=account["id"], profile=accounts_pb2.Profile(display_name=text),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"])), token)
    assert (code, fields) == ("INVALID_ARGUMENT", {"profile.display_name"})
    kept = requests.get(f"{stack.url}/v1/accounts/{account['id']}", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).json()
    assert kept.get("profile", {}).get("displayName", "") == ""
