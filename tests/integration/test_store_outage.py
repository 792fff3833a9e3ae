"""Cassandra goes away under a running service (a proxy in front of the real one is cut): callers get
UNAVAILABLE with RetryInfo, the edge a 503 with Retry-After, never a 500 or the driver's words; the
service reports NOT_SERVING meanwhile, and serves again once the store is back."""

from __future__ import annotations

import time

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.app import create_app
from harness import servers
from runtime.errors import details_of
from services.catalog.server import CatalogSettings
from services.catalog.server import create_server as create_catalog_server
from shop.accounts.v1 import accounts_pb2 as apb
from shop.catalog.v1 import catalog_pb2 as cpb
from shop.catalog.v1 import catalog_pb2_grpc
from tests.support.http import serve
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.cassandra
ACCOUNTS, CATALOG = "shop.accounts.v1.AccountsService", "shop.catalog.v1.CatalogService"


@pytest.fixture
def proxied_catalog(pki_dir, accounts_port, tmp_path, cassandra_settings):
    settings = cassandra_settings()
    host, port = settings.contact_points[0].split(":")
    with TcpProxy(host, int(port)) as proxy:
        env = servers.service_env(
            "catalog", pki_dir, tmp_path, **servers.cassandra_env(settings),
            JWKS_TARGET=f"127.0.0.1:{accounts_port}", JWKS_METHOD=f"/{ACCOUNTS}/GetJwks")
        env["CASSANDRA_CONTACT_POINTS"] = f"127.0.0.1:{proxy.port}"
        with servers.in_process(create_catalog_server, CatalogSettings.from_env(env), pki_dir) as catalog_port:
            yield proxy, catalog_port


def _admin_token(accounts, admin_credentials) -> str:
    return accounts().IssueToken(apb.IssueTokenRequest(grant_type="password", username=admin_credentials[0],
                                                       password=admin_credentials[1]), timeout=10).access_token


def _health(pki_dir, port) -> int:
    with servers.channel(pki_dir, port, "operator") as ch:
        return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_a_store_outage_is_unavailable_with_retry_info_and_503_at_the_edge(
        proxied_catalog, pki_dir, accounts, accounts_port, admin_credentials):
    proxy, catalog_port = proxied_catalog
    admin = servers.bearer(_admin_token(accounts, admin_credentials))
    with servers.channel(pki_dir, catalog_port, "edge") as ch:
        stub = catalog_pb2_grpc.CatalogServiceStub(ch)
        made = stub.CreateProduct(cpb.CreateProductRequest(product=cpb.Product(
            name="Outage mug", price=cpb.Money(currency_code="EUR", amount_minor=500))), timeout=10, metadata=admin)
        app = create_app({"EDGE_UPSTREAMS": f"{ACCOUNTS}=127.0.0.1:{accounts_port},{CATALOG}=127.0.0.1:{catalog_port}",
                          "TLS_DIR": str(pki_dir), "JWKS_METHOD": f"/{ACCOUNTS}/GetJwks",
                          "TOKEN_ISSUER": servers.ISSUER, "TOKEN_AUDIENCE": servers.AUDIENCE})
        with serve(app) as edge:
            url, headers = f"{edge}/v1/products/{made.id}", {"Authorization": dict(admin)["authorization"]}
            assert requests.get(url, headers=headers, timeout=10).status_code == 200

            proxy.cut()
            with pytest.raises(grpc.RpcError) as failed:
                stub.GetProduct(cpb.GetProductRequest(id=made.id), timeout=20, metadata=admin)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "NoHostAvailable" not in failed.value.details() and "127.0.0.1" not in failed.value.details()
            assert any(d.DESCRIPTOR.name == "RetryInfo" for d in details_of(failed.value))
            reply = requests.get(url, headers=headers, timeout=30)
            assert reply.status_code == 503 and reply.headers["Retry-After"] == "1"
            assert reply.headers["Content-Type"] == "application/problem+json"
            deadline = time.monotonic() + 20
            while _health(pki_dir, catalog_port) != health_pb2.HealthCheckResponse.NOT_SERVING:
                assert time.monotonic() < deadline, "health did not follow the store down"
                time.sleep(0.2)

            proxy.restore()
            deadline = time.monotonic() + 60
            while requests.get(url, headers=headers, timeout=30).status_code != 200:
                assert time.monotonic() < deadline, "the service did not come back with its store"
                time.sleep(0.5)
            assert stub.GetProduct(cpb.GetProductRequest(id=made.id), timeout=10, metadata=admin).name == "Outage mug"
