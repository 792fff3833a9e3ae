"""Wiring of the catalog service: settings -> store -> use cases -> servicer -> gRPC server."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runtime.clients import ServiceClients, remote_token_verifier
from runtime.interceptors import token_check
from runtime.server import ServiceServer, Wiring, in_order, serve
from runtime.settings import Env, KeySource, ServerSettings
from runtime.standing import AccountStandings, remote_standing_source, standing_check, standing_window
from runtime.tokens import VerifierSettings
from services.catalog.service import CatalogService
from services.catalog.servicer import CatalogServicer
from services.catalog.store import CatalogStore, open_store
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


def build_catalog(settings: CatalogSettings, *, store: CatalogStore | None = None,
                  standing_clock: Callable[[], float] = time.monotonic) -> Wiring:
    """The catalog service's parts, each made from the settings unless given: a test passes its own
    store (which the service then owns and closes) or a clock for how long a standing is trusted."""
    verifier, jwks_client = remote_token_verifier(settings.keys, settings.verifier, settings.server.tls)
    accounts = ServiceClients(settings.server.tls, {ACCOUNTS_SERVICE: settings.accounts_target})
    standings = AccountStandings(remote_standing_source(accounts, STANDING_METHOD), settings.standing_seconds, clock=standing_clock)
    store = store if store is not None else open_store(settings.server)
    servicer = CatalogServicer(CatalogService(store))
    return Wiring(descriptors=[DESCRIPTOR],
                  register=lambda s: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, s),
                  ready_check=store.ping, on_stop=in_order(store.close, jwks_client.close, accounts.close),
                  checks=(token_check(verifier), standing_check(standings)))


def create_server(settings: CatalogSettings, **parts) -> tuple[ServiceServer, int]:
    """The catalog's gRPC server (port bound, not started); `parts` as build_catalog takes them."""
    return serve(settings.server, build_catalog(settings, **parts))
