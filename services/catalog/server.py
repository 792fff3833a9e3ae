"""Wiring of the catalog service: settings -> store -> use cases -> servicer -> gRPC server."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runtime.clients import ServiceClients, remote_token_verifier
from runtime.interceptors import token_check
from runtime.server import ServiceServer
from runtime.settings import Env, KeySource, ServerSettings
from runtime.standing import AccountStandings, remote_standing_source, standing_check, standing_window
from runtime.tokens import VerifierSettings
from services.catalog.service import CatalogService
from services.catalog.servicer import CatalogServicer
from services.catalog.store import open_store
from services.common.standing import ACCOUNTS_SERVICE, STANDING_METHOD
from shop.catalog.v1 import catalog_pb2, catalog_pb2_grpc

SERVICE = "catalog"
DEFAULT_PORT = 50052
DESCRIPTOR = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"]


@dataclass(frozen=True)
class CatalogSettings:
    server: ServerSettings
    keys: KeySource
    verifier: VerifierSettings
    # Where accounts answers for the standing of a token's account, and how long an answer is trusted.
    accounts_target: str
    standing_seconds: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CatalogSettings:
        env = Env(environ)
        keys = KeySource.from_env(env)
        return cls(server=ServerSettings.from_env(SERVICE, DEFAULT_PORT, environ),
                   keys=keys, verifier=VerifierSettings.from_env(env),
                   # accounts publishes the keys too, so by default it is asked where the keys come from.
                   accounts_target=env.str("ACCOUNTS_TARGET", keys.target),
                   standing_seconds=standing_window(env))


load_settings = CatalogSettings.from_env


def create_server(settings: CatalogSettings, *,
                  standing_clock: Callable[[], float] = time.monotonic) -> tuple[ServiceServer, int]:
    """Builds the server (port bound, not started). GRPC_PORT=0 picks a free port. `standing_clock`
    times how long an account's standing is trusted (tests inject one)."""
    verifier, jwks_client = remote_token_verifier(settings.keys, settings.verifier, settings.server.tls)
    accounts = ServiceClients(settings.server.tls, {ACCOUNTS_SERVICE: settings.accounts_target})
    standings = AccountStandings(remote_standing_source(accounts, STANDING_METHOD), settings.standing_seconds, clock=standing_clock)
    store = open_store(settings.server)
    servicer = CatalogServicer(CatalogService(store))

    def close():
        store.close()
        jwks_client.close()
        accounts.close()

    server = ServiceServer(
        settings.server, descriptors=[DESCRIPTOR],
        register=lambda s: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, s),
        ready_check=store.ping, on_stop=close, checks=(token_check(verifier), standing_check(standings)),
    )
    return server, server.port
