"""The order saga's gRPC adapters (services/orders/gateways.py) against real accounts and catalog
servers over mTLS: each kind of refusal becomes the ports' error, and no client-facing message
names an internal service or RPC."""

from __future__ import annotations

import uuid

import pytest

from harness import servers
from runtime.calls import CallContext
from runtime.clients import ServiceClients
from runtime.settings import TlsFiles
from services.catalog.server import CatalogSettings
from services.catalog.server import create_server as create_catalog_server
from services.orders.domain import DependencyFailed, DependencyTimedOut, Forbidden, Line, Rejected
from services.orders.gateways import ACCOUNTS, CATALOG, GrpcAccounts, GrpcCatalog
from shop.accounts.v1 import accounts_pb2 as apb
from shop.catalog.v1 import catalog_pb2 as cpb
from shop.catalog.v1 import catalog_pb2_grpc

INTERNAL_NAMES = ("CatalogService", "AccountsService", "ReserveStock", "BatchGetProducts", "GetAccount", "shop.")


@pytest.fixture(scope="module")
def catalog_port(pki_dir, accounts_port, tmp_path_factory):
    env = servers.service_env("catalog", pki_dir, tmp_path_factory.mktemp("catalog-data"),
                              JWKS_TARGET=f"127.0.0.1:{accounts_port}", JWKS_METHOD=f"/{ACCOUNTS.full_name}/GetJwks")
    with servers.in_process(create_catalog_server, CatalogSettings.from_env(env), pki_dir) as port:
        yield port


@pytest.fixture(scope="module")
def ports(pki_dir, accounts_port, catalog_port):
    """The adapters as the orders workload builds them (its certificate, its targets)."""
    tls = TlsFiles(pki_dir / "ca.pem", pki_dir / "orders.pem", pki_dir / "orders.key")
    clients = ServiceClients(tls, {ACCOUNTS.full_name: f"127.0.0.1:{accounts_port}",
                                   CATALOG.full_name: f"127.0.0.1:{catalog_port}"})
    yield GrpcAccounts(clients), GrpcCatalog(clients)
    clients.close()


def _token(accounts, username, scope=""):
    edge = accounts()
    return edge.IssueToken(apb.IssueTokenRequest(grant_type="password", username=username, password=servers.PASSWORD,
                                                 scope=scope), timeout=10).access_token


@pytest.fixture(scope="module")
def product_id(pki_dir, catalog_port, admin_credentials, accounts_port):
    with servers.channel(pki_dir, accounts_port, "edge") as ch:
        from shop.accounts.v1 import accounts_pb2_grpc

        admin = accounts_pb2_grpc.AccountsServiceStub(ch).IssueToken(apb.IssueTokenRequest(
            grant_type="password", username=admin_credentials[0], password=admin_credentials[1]), timeout=10).access_token
    with servers.channel(pki_dir, catalog_port, "edge") as ch:
        stub = catalog_pb2_grpc.CatalogServiceStub(ch)
        made = stub.CreateProduct(cpb.CreateProductRequest(product=cpb.Product(
            name="Gateway mug", price=cpb.Money(currency_code="EUR", amount_minor=700))), timeout=10,
            metadata=servers.bearer(admin))
        stub.SetStock(cpb.SetStockRequest(id=made.id, quantity=10), timeout=10, metadata=servers.bearer(admin))
    return made.id


def _no_internal_names(error: Exception) -> None:
    assert not any(name in str(error) for name in INTERNAL_NAMES), str(error)


def test_products_are_priced_in_one_call_and_unknown_ones_are_left_out(ports, product_id, accounts, unique):
    _, catalog = ports
    name = unique("gw")
    accounts().CreateAccount(apb.CreateAccountRequest(username=name, email=f"{name}@example.com",
                                                      password=servers.PASSWORD), timeout=10)
    call = CallContext.starting_now(5, token=_token(accounts, name))
    priced = catalog.price_many([product_id], call)[product_id]
    assert (priced.name, priced.currency, priced.unit_price_minor, priced.available) == ("Gateway mug", "EUR", 700, True)
    # BatchGetProducts is all or none: the unknown ids it names are left out, the others still priced.
    unknown = [str(uuid.uuid4()), str(uuid.uuid4())]
    assert catalog.price_many([unknown[0], product_id, unknown[1], product_id], call) == {product_id: priced}
    assert catalog.price_many(unknown, call) == {}


def test_a_refusal_is_rejected_without_naming_the_rpc(ports, product_id, accounts, unique):
    _, catalog = ports
    name = unique("gw")
    accounts().CreateAccount(apb.CreateAccountRequest(username=name, email=f"{name}@example.com",
                                                      password=servers.PASSWORD), timeout=10)
    call, order_id = CallContext.starting_now(5, token=_token(accounts, name)), str(uuid.uuid1())
    assert catalog.reserve(order_id, (Line(product_id, 1),), call) == (True, [])
    with pytest.raises(Rejected) as refused:  # the same reservation id with other items: catalog refuses
        catalog.reserve(order_id, (Line(product_id, 2),), call)
    assert refused.value.reason == "UPSTREAM_REJECTED"
    _no_internal_names(refused.value)
    catalog.release(order_id, call)


def test_a_token_without_the_scope_is_forbidden_without_naming_the_rpc(ports, product_id, accounts, unique):
    account_port, catalog = ports
    name = unique("gw")
    created = accounts().CreateAccount(apb.CreateAccountRequest(username=name, email=f"{name}@example.com",
                                                                password=servers.PASSWORD), timeout=10)
    read_only = CallContext.starting_now(5, token=_token(accounts, name, scope="catalog.read accounts.read"))
    assert account_port.account_is_active(created.id, read_only) is True
    with pytest.raises(Forbidden) as forbidden:
        catalog.reserve(str(uuid.uuid1()), (Line(product_id, 1),), read_only)
    _no_internal_names(forbidden.value)


def test_a_service_that_does_not_answer_in_time_is_a_dependency_failure(pki_dir, accounts, unique):
    """Nothing listens at the target: the call waits for a connection until its deadline, then times out."""
    tls = TlsFiles(pki_dir / "ca.pem", pki_dir / "orders.pem", pki_dir / "orders.key")
    clients = ServiceClients(tls, {CATALOG.full_name: f"127.0.0.1:{servers.free_port()}"})
    try:
        with pytest.raises(DependencyFailed) as failed:
            GrpcCatalog(clients).price_many([str(uuid.uuid4())], CallContext.starting_now(0.5))
        assert isinstance(failed.value, DependencyTimedOut)
        _no_internal_names(failed.value)
        with pytest.raises(DependencyTimedOut):  # and with no time left at all, nothing is sent
            GrpcCatalog(clients).price_many([str(uuid.uuid4())], CallContext.starting_now(0.01))
    finally:
        clients.close()
