"""Wiring of the catalog service: settings -> store -> use cases -> servicer -> gRPC server."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping

from runtime.clients import remote_token_verifier
from runtime.interceptors import token_check
from runtime.server import ServiceServer
from runtime.settings import Env, KeySource, ServerSettings
from runtime.tokens import VerifierSettings
from services.catalog.service import CatalogService
from services.catalog.servicer import CatalogServicer
from services.catalog.store import open_store
from shop.catalog.v1 import catalog_pb2, catalog_pb2_grpc

SERVICE = "catalog"
DEFAULT_PORT = 50052
DESCRIPTOR = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"]


@dataclass(frozen=True)
class CatalogSettings:
    server: ServerSettings
    keys: KeySource
    verifier: VerifierSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CatalogSettings:
        env = Env(environ)
        return cls(server=ServerSettings.from_env(SERVICE, DEFAULT_PORT, environ),
                   keys=KeySource.from_env(env), verifier=VerifierSettings.from_env(env))


load_settings = CatalogSettings.from_env


def create_server(settings: CatalogSettings) -> tuple[ServiceServer, int]:
    """Builds the server (port bound, not started). GRPC_PORT=0 picks a free port."""
    verifier, jwks_client = remote_token_verifier(settings.keys, settings.verifier, settings.server.tls)
    store = open_store(settings.server)
    servicer = CatalogServicer(CatalogService(store))

    def close():
        store.close()
        jwks_client.close()

    server = ServiceServer(
        settings.server, descriptors=[DESCRIPTOR],
        register=lambda s: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, s),
        ready_check=store.ping, on_stop=close, checks=(token_check(verifier),),
    )
    return server, server.port
