"""Wiring of the catalog service: settings -> store -> use cases -> servicer -> gRPC server."""

from __future__ import annotations

from runtime.clients import remote_token_verifier
from runtime.interceptors import token_check
from runtime.server import ServiceServer
from runtime.settings import ServerSettings
from services.catalog.service import CatalogService
from services.catalog.servicer import CatalogServicer
from services.catalog.store import open_store
from shop.catalog.v1 import catalog_pb2, catalog_pb2_grpc

SERVICE = "catalog"
DEFAULT_PORT = 50052
DESCRIPTOR = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"]


def load_settings(environ=None) -> ServerSettings:
    return ServerSettings.from_env(SERVICE, DEFAULT_PORT, environ)


def create_server(settings: ServerSettings) -> tuple[ServiceServer, int]:
    """Builds the server (port bound, not started). GRPC_PORT=0 picks a free port."""
    verifier, jwks_client = remote_token_verifier(settings.env, settings.tls)
    store = open_store(settings)
    servicer = CatalogServicer(CatalogService(store))

    def close():
        store.close()
        jwks_client.close()

    server = ServiceServer(
        settings, descriptors=[DESCRIPTOR],
        register=lambda s: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, s),
        ready_check=store.ping, on_stop=close, checks=(token_check(verifier),),
    )
    return server, server.port
