"""The orders service's view of accounts and catalog, over mTLS gRPC.

Turns transport failures into DependencyFailed, so the use cases never see gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from runtime.clients import DeadlineExpired, ServiceClients
from services.orders.domain import DependencyFailed, Forbidden, Line, Rejected
from shop.accounts.v1 import accounts_pb2
from shop.catalog.v1 import catalog_pb2

_ACCOUNTS = accounts_pb2.DESCRIPTOR.services_by_name["AccountsService"]
_CATALOG = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"]
# Codes a gateway method handles itself (a missing product is an answer, not a failure).
_EXPECTED = {"GetAccount": (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT),
             "GetProduct": (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)}
_FAILURES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
             grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)


@dataclass(frozen=True)
class Priced:
    name: str
    currency: str
    unit_price_minor: int
    available: bool


def _call(clients: ServiceClients, method: str, request, *, timeout: float, token: str | None):
    service = _CATALOG if method in _CATALOG.methods_by_name else _ACCOUNTS
    try:
        return clients.call(service.methods_by_name[method], request, timeout=timeout, token=token)
    except DeadlineExpired as expired:
        raise DependencyFailed(str(expired), timed_out=True) from None
    except grpc.RpcError as error:
        code = error.code()
        if code in _FAILURES:
            raise DependencyFailed(f"{service.name}.{method}: {code.name}",
                                   timed_out=code == grpc.StatusCode.DEADLINE_EXCEEDED) from None
        if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
            raise Forbidden(f"{service.name} refused {method} for this token: {error.details()}") from None
        if code not in _EXPECTED.get(method, ()):
            raise Rejected(f"{service.name}.{method}: {error.details()}", "UPSTREAM_REJECTED") from None
        raise


class Gateways:
    def __init__(self, clients: ServiceClients):
        self._clients = clients

    def account_is_active(self, user_id: str, token: str, timeout: float) -> bool:
        try:
            account = _call(self._clients, "GetAccount", accounts_pb2.GetAccountRequest(id=user_id), timeout=timeout, token=token)
        except grpc.RpcError as error:
            if error.code() in _EXPECTED["GetAccount"]:
                return False  # a client-credentials token names no account
            raise
        return account.state == accounts_pb2.ACTIVE

    def price(self, product_id: str, token: str, timeout: float) -> Priced | None:
        try:
            product = _call(self._clients, "GetProduct", catalog_pb2.GetProductRequest(id=product_id), timeout=timeout, token=token)
        except grpc.RpcError as error:
            if error.code() in _EXPECTED["GetProduct"]:
                return None
            raise
        return Priced(product.name, product.price.currency_code, product.price.amount_minor,
                      product.state == catalog_pb2.AVAILABLE)

    def reserve(self, order_id: str, lines: tuple[Line, ...], token: str, timeout: float) -> tuple[bool, list[str]]:
        request = catalog_pb2.ReserveStockRequest(reservation_id=order_id, items=[
            catalog_pb2.StockItem(product_id=l.product_id, quantity=l.quantity) for l in lines])
        reply = _call(self._clients, "ReserveStock", request, timeout=timeout, token=token)
        if reply.status == catalog_pb2.RELEASED:
            raise Rejected("this order was already cancelled", "ORDER_CANCELLED")
        return reply.status == catalog_pb2.RESERVED, list(reply.short_product_ids)

    def release(self, order_id: str, timeout: float) -> None:
        _call(self._clients, "ReleaseStock", catalog_pb2.ReleaseStockRequest(reservation_id=order_id),
              timeout=timeout, token=None)

    def close(self) -> None:
        self._clients.close()
