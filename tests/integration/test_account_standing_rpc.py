"""GetAccountStanding over real mTLS: only the shop's services may ask it, and what it answers; and a
service that cannot reach accounts refuses users' tokens (fail closed) but not clients acting as themselves."""

from __future__ import annotations

import uuid

import grpc
import jwt
import pytest
from google.rpc import error_details_pb2

from harness import servers
from harness.servers import PASSWORD, bearer
from runtime.errors import details_of
from services.catalog.server import CatalogSettings
from services.catalog.server import create_server as create_catalog_server
from shop.accounts.v1 import accounts_pb2 as pb
from shop.catalog.v1 import catalog_pb2, catalog_pb2_grpc


def _fails(call, request, timeout: float = 10, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=timeout, **kwargs)
    return raised.value


def _reason(error: grpc.RpcError) -> list[str]:
    return [d.reason for d in details_of(error) if isinstance(d, error_details_pb2.ErrorInfo)]


def _customer(edge, name: str) -> tuple[str, str]:
    """A new account's id and an access token of it."""
    account = edge.CreateAccount(pb.CreateAccountRequest(username=name, email=f"{name}@example.com", password=PASSWORD),
                                 timeout=10)
    issued = edge.IssueToken(pb.IssueTokenRequest(grant_type="password", username=name, password=PASSWORD), timeout=10)
    return account.id, issued.access_token


def _standing(accounts, account_id: str, caller: str = "orders") -> pb.AccountStanding:
    return accounts(caller).GetAccountStanding(pb.GetAccountStandingRequest(id=account_id), timeout=10)


def test_only_the_shops_services_may_ask_for_an_accounts_standing(accounts, unique):
    account, _token = _customer(accounts(), unique())
    for caller in ("edge", "operator"):
        error = _fails(accounts(caller).GetAccountStanding, pb.GetAccountStandingRequest(id=account))
        assert (error.code(), _reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, ["CALLER_NOT_ALLOWED"]), caller
    for caller in ("orders", "catalog"):
        assert _standing(accounts, account, caller).active, caller


def test_the_standing_says_whether_the_account_is_active_and_since_when_its_tokens_count(accounts, unique):
    edge, name = accounts(), unique()
    account, token = _customer(edge, name)
    fresh = _standing(accounts, account)
    assert fresh.active and not fresh.HasField("tokens_valid_after")
    edge.SignOutEverywhere(pb.SignOutEverywhereRequest(id=account), timeout=10, metadata=bearer(token))
    signed_out = _standing(accounts, account)
    issued_at = jwt.decode(token, options={"verify_signature": False})["iat"]
    assert signed_out.active and signed_out.tokens_valid_after.seconds > issued_at
    again = edge.IssueToken(pb.IssueTokenRequest(grant_type="password", username=name, password=PASSWORD), timeout=10)
    edge.DeactivateAccount(pb.DeactivateAccountRequest(id=account), timeout=10, metadata=bearer(again.access_token))
    assert not _standing(accounts, account).active
    unknown = _fails(accounts("orders").GetAccountStanding, pb.GetAccountStandingRequest(id=str(uuid.uuid4())))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def cut_off_catalog(pki_dir, accounts_port, tmp_path_factory):
    """A catalog that verifies tokens with accounts' keys but cannot reach accounts for standings."""
    env = servers.service_env("catalog", pki_dir, tmp_path_factory.mktemp("catalog-data"),
                              JWKS_TARGET=f"127.0.0.1:{accounts_port}", JWKS_METHOD="/shop.accounts.v1.AccountsService/GetJwks",
                              ACCOUNTS_TARGET=f"127.0.0.1:{servers.free_port()}")
    with servers.in_process(create_catalog_server, CatalogSettings.from_env(env), pki_dir) as port, \
            servers.channel(pki_dir, port, "edge") as channel:
        yield catalog_pb2_grpc.CatalogServiceStub(channel)


def test_without_accounts_a_users_token_is_refused_as_unavailable_and_a_clients_token_still_works(
        cut_off_catalog, accounts, unique, admin_credentials):
    _account, token = _customer(accounts(), unique())
    # catalog waits for accounts as long as the call's deadline allows, then refuses before it passes.
    error = _fails(cut_off_catalog.ListProducts, catalog_pb2.ListProductsRequest(), timeout=2, metadata=bearer(token))
    assert (error.code(), _reason(error)) == (grpc.StatusCode.UNAVAILABLE, ["STANDING_UNAVAILABLE"])
    assert any(isinstance(d, error_details_pb2.RetryInfo) for d in details_of(error))
    operator = accounts("operator")
    admin = operator.IssueToken(pb.IssueTokenRequest(grant_type="password", username=admin_credentials[0],
                                                     password=admin_credentials[1]), timeout=10).access_token
    client = operator.CreateClient(pb.CreateClientRequest(name="reports", scopes=["catalog.read"]), timeout=10,
                                   metadata=bearer(admin))
    robot = operator.IssueToken(pb.IssueTokenRequest(grant_type="client_credentials", client_id=client.client_id,
                                                     client_secret=client.client_secret), timeout=10).access_token
    cut_off_catalog.ListProducts(catalog_pb2.ListProductsRequest(), timeout=10, metadata=bearer(robot))
