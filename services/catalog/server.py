"""Wiring of the catalog service: settings -> store -> use cases -> servicer -> gRPC server."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runtime.server import ServiceServer, Wiring, in_order, serve
from runtime.settings import Env, ServerSettings
from services.catalog.service import CatalogService
from services.catalog.servicer import CatalogServicer
from services.catalog.store import CatalogStore, open_store
from services.common.callers import CallerSettings, remote_caller_checks
from services.registry import server_settings
from shop.catalog.v1 import catalog_pb2, catalog_pb2_grpc

SERVICE = "catalog"  # its entry in services/workloads.toml
DESCRIPTOR = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"]


@dataclass(frozen=True)
class CatalogSettings:
    server: ServerSettings
    callers: CallerSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CatalogSettings:
        return cls(server=server_settings(SERVICE, environ),
                   callers=CallerSettings.from_env(Env(environ)))


load_settings = CatalogSettings.from_env


def build_catalog(settings: CatalogSettings, *, store: CatalogStore | None = None,
                  standing_clock: Callable[[], float] = time.monotonic) -> Wiring:
    """The catalog service's parts, each made from the settings unless given: a test passes its own
    store (which the service then owns and closes) or a clock for how long a standing is trusted."""
    checks, close_checks = remote_caller_checks(settings.callers, settings.server.tls, clock=standing_clock)
    store = store if store is not None else open_store(settings.server)
    servicer = CatalogServicer(CatalogService(store))
    return Wiring(descriptors=[DESCRIPTOR],
                  register=lambda s: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, s),
                  ready_check=store.ping, on_stop=in_order(store.close, close_checks), checks=checks)


def create_server(settings: CatalogSettings, **parts) -> tuple[ServiceServer, int]:
    """The catalog's gRPC server (port bound, not started); `parts` as build_catalog takes them."""
    return serve(settings.server, build_catalog(settings, **parts))
