"""Wiring of the orders service: settings -> store, ports to accounts and catalog, recovery pass, gRPC server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from observability.tracing import untraced
from runtime.clients import ServiceClients
from runtime.server import ServiceServer, Wiring, in_order, serve
from runtime.settings import Env, ServerSettings
from services.common.callers import CallerSettings, remote_caller_checks
from services.orders.domain import Order
from services.orders.gateways import ACCOUNTS, CATALOG, GrpcAccounts, GrpcCatalog
from services.orders.ports import AccountsPort, CatalogPort
from services.orders.service import OrdersService
from services.orders.servicer import OrdersServicer
from services.orders.store import OrderStore, open_store
from services.registry import server_settings
from shop.orders.v1 import orders_pb2, orders_pb2_grpc

_LOGGER = logging.getLogger(__name__)
SERVICE = "orders"  # its entry in services/workloads.toml
DESCRIPTOR = orders_pb2.DESCRIPTOR.services_by_name["OrdersService"]


@dataclass(frozen=True)
class OrdersSettings:
    server: ServerSettings
    callers: CallerSettings  # its accounts_target is also where the saga asks accounts
    catalog_target: str
    recovery_interval_seconds: float
    recovery_age: timedelta

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OrdersSettings:
        env = Env(environ)
        return cls(
            server=server_settings(SERVICE, environ),
            callers=CallerSettings.from_env(env, accounts_target="127.0.0.1:50051"),
            catalog_target=env.str("CATALOG_TARGET", "127.0.0.1:50052"),
            recovery_interval_seconds=env.float("RECOVERY_INTERVAL_SECONDS", 15.0, minimum=0.1),
            recovery_age=timedelta(seconds=env.float("RECOVERY_AGE_SECONDS", 30.0)),
        )


load_settings = OrdersSettings.from_env


class RecoveryLoop:
    """Runs the recovery pass at start and then every `interval` seconds until stopped."""

    def __init__(self, orders: OrdersService, interval: float, older_than: timedelta):
        self._orders, self._interval, self._older_than = orders, interval, older_than
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="recovery", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with untraced():  # housekeeping every few seconds: it logs what it fixes, it is not a request
                    self._orders.recover(self._older_than)
            except Exception:  # a bad pass must not end the loop; the next one retries
                _LOGGER.exception("recovery pass failed")
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()


def build_orders(settings: OrdersSettings, *, store: OrderStore | None = None, accounts: AccountsPort | None = None,
                 catalog: CatalogPort | None = None, after_reserve: Callable[[Order], None] | None = None,
                 standing_clock: Callable[[], float] = time.monotonic) -> Wiring:
    """The orders service's parts, each made from the settings unless given: a test passes its own
    store (which the service then owns and closes), ports to accounts and catalog, a clock for how
    long a standing is trusted, or `after_reserve` (a seam for crash tests, harness/faults.py)."""
    clients = ServiceClients(settings.server.tls, {
        ACCOUNTS.full_name: settings.callers.accounts_target,
        CATALOG.full_name: settings.catalog_target,
    })
    checks, close_checks = remote_caller_checks(settings.callers, settings.server.tls, accounts=clients, clock=standing_clock)
    store = store if store is not None else open_store(settings.server)
    orders = OrdersService(store, accounts or GrpcAccounts(clients), catalog or GrpcCatalog(clients),
                           **({"after_reserve": after_reserve} if after_reserve else {}))
    recovery = RecoveryLoop(orders, settings.recovery_interval_seconds, settings.recovery_age)
    servicer = OrdersServicer(orders)
    return Wiring(descriptors=[DESCRIPTOR],
                  register=lambda s: orders_pb2_grpc.add_OrdersServiceServicer_to_server(servicer, s),
                  ready_check=store.ping, on_start=recovery.start,
                  on_stop=in_order(recovery.stop, store.close, clients.close, close_checks), checks=checks)


def create_server(settings: OrdersSettings, **parts) -> tuple[ServiceServer, int]:
    """The orders service's gRPC server (port bound, not started); `parts` as build_orders takes them."""
    return serve(settings.server, build_orders(settings, **parts))
