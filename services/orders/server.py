"""Wiring of the orders service: store, gateways to accounts and catalog, recovery pass, gRPC server."""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

from runtime.clients import ServiceClients, remote_token_verifier
from runtime.interceptors import token_check
from runtime.server import ServiceServer
from runtime.settings import ServerSettings
from services.orders.gateways import Gateways
from services.orders.service import OrdersService
from services.orders.servicer import OrdersServicer
from services.orders.store import open_store
from shop.orders.v1 import orders_pb2, orders_pb2_grpc

_LOGGER = logging.getLogger(__name__)
SERVICE = "orders"
DEFAULT_PORT = 50053
DESCRIPTOR = orders_pb2.DESCRIPTOR.services_by_name["OrdersService"]


def load_settings(environ=None) -> ServerSettings:
    return ServerSettings.from_env(SERVICE, DEFAULT_PORT, environ)


def _crash_after_reserve(order) -> None:
    """Test-only fault: die between reserving stock and confirming, as a power cut would."""
    _LOGGER.warning("fault injection: exiting after reserving order %s", order.id)
    os._exit(70)


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
                self._orders.recover(self._older_than)
            except Exception:  # a bad pass must not end the loop; the next one retries
                _LOGGER.exception("recovery pass failed")
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()


def create_server(settings: ServerSettings) -> tuple[ServiceServer, int]:
    env = settings.env
    verifier, jwks_client = remote_token_verifier(env, settings.tls)
    clients = ServiceClients(settings.tls, {
        "shop.accounts.v1.AccountsService": env.str("ACCOUNTS_TARGET", "127.0.0.1:50051"),
        "shop.catalog.v1.CatalogService": env.str("CATALOG_TARGET", "127.0.0.1:50052"),
    })
    store = open_store(settings)
    fault = env.choice("ORDERS_FAULT", "none", ("none", "crash_after_reserve"))
    orders = OrdersService(store, Gateways(clients),
                           after_reserve=_crash_after_reserve if fault == "crash_after_reserve" else (lambda order: None))
    recovery = RecoveryLoop(orders, env.float("RECOVERY_INTERVAL_SECONDS", 15.0, minimum=0.1),
                            timedelta(seconds=env.float("RECOVERY_AGE_SECONDS", 30.0)))
    servicer = OrdersServicer(orders)

    def close():
        recovery.stop()
        store.close()
        clients.close()
        jwks_client.close()

    server = ServiceServer(
        settings, descriptors=[DESCRIPTOR],
        register=lambda s: orders_pb2_grpc.add_OrdersServiceServicer_to_server(servicer, s),
        ready_check=store.ping, on_stop=close, on_start=recovery.start, checks=(token_check(verifier),),
    )
    return server, server.port
