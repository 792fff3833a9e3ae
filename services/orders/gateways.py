"""The order saga's ports over mTLS gRPC: accounts and catalog as the orders workload calls them.

One refusal path (`_call`) turns every gRPC failure into the ports' errors, by the one failure
classification (runtime/failures.py), so the use cases never see gRPC: a retryable failure, an
overloaded or failing service -> DependencyFailed (DependencyTimedOut past the deadline), a refused
token -> Forbidden, any other refusal of the request -> Rejected, and the codes a method expects (a
missing account or product) -> _Absent, which the adapter turns into its port's answer.
"""

from __future__ import annotations

import logging
import re

import grpc
from google.rpc import error_details_pb2

from runtime.calls import CallContext, DeadlineExpired
from runtime.clients import ServiceClients
from runtime.errors import details_of
from runtime.failures import Failure, classify
from services.orders.domain import DependencyFailed, DependencyTimedOut, Forbidden, Line, Priced, Rejected
from services.orders.ports import AccountsPort, CatalogPort
from shop.accounts.v1 import accounts_pb2
from shop.catalog.v1 import catalog_pb2

_LOGGER = logging.getLogger(__name__)
ACCOUNTS = accounts_pb2.DESCRIPTOR.services_by_name["AccountsService"]
CATALOG = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"]
_REFUSED_TOKEN = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
_ABSENT = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
_ID_FIELD = re.compile(r"ids\[(\d+)\]")  # a BatchGetProducts violation: the i-th id asked for


class _Absent(Exception):
    """What a method was asked for does not exist (NOT_FOUND, or an id that cannot name anything):
    the fields its violations name, if it named any."""

    def __init__(self, fields: list[str]):
        super().__init__(", ".join(fields))
        self.fields = fields


def _call(clients: ServiceClients, method, request, call: CallContext, *, absent_expected: bool = False):
    try:
        return clients.call(method, request, call)
    except DeadlineExpired:
        raise DependencyTimedOut("the request ran out of time before a service it needs answered") from None
    except grpc.RpcError as error:
        code, name = error.code(), f"{method.containing_service.name}.{method.name}"
        if absent_expected and code in _ABSENT:
            raise _Absent([v.field for detail in details_of(error) if isinstance(detail, error_details_pb2.BadRequest)
                           for v in detail.field_violations]) from None
        # The caller learns what happened, not which internal RPC said so: that goes to the log.
        _LOGGER.warning("%s failed: %s %s", name, code.name, error.details())
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise DependencyTimedOut("a service this order needs did not answer in time") from None
        if classify(error).failure is not Failure.CLIENT_FAULT:
            raise DependencyFailed("a service this order needs is unavailable") from None
        if code in _REFUSED_TOKEN:
            raise Forbidden("a service this order needs refused the token") from None
        raise Rejected("a service this order needs refused the request", "UPSTREAM_REJECTED") from None


class GrpcAccounts(AccountsPort):
    def __init__(self, clients: ServiceClients):
        self._clients = clients

    def account_is_active(self, user_id: str, call: CallContext) -> bool:
        # A client-credentials token names no account: NOT_FOUND / INVALID_ARGUMENT mean "no account".
        try:
            account = _call(self._clients, ACCOUNTS.methods_by_name["GetAccount"],
                            accounts_pb2.GetAccountRequest(id=user_id), call, absent_expected=True)
        except _Absent:
            return False
        return account.state == accounts_pb2.ACTIVE


class GrpcCatalog(CatalogPort):
    def __init__(self, clients: ServiceClients):
        self._clients = clients

    def price_many(self, product_ids: list[str], call: CallContext) -> dict[str, Priced]:
        asked = list(dict.fromkeys(product_ids))
        try:
            return self._batch_get(asked, call, absent_expected=True)
        except _Absent as absent:
            # All or none (AIP-231): the refusal names each id without a product (`ids[i]`); the others
            # are asked for again. Products are archived, never deleted, so the second call finds them.
            named = {int(found.group(1)) for field in absent.fields if (found := _ID_FIELD.fullmatch(field))}
            if not named or max(named) >= len(asked):
                raise Rejected("a service this order needs refused the request", "UPSTREAM_REJECTED") from None
            existing = [product_id for i, product_id in enumerate(asked) if i not in named]
            return self._batch_get(existing, call) if existing else {}

    def _batch_get(self, product_ids: list[str], call: CallContext, *, absent_expected: bool = False) -> dict[str, Priced]:
        reply = _call(self._clients, CATALOG.methods_by_name["BatchGetProducts"],
                      catalog_pb2.BatchGetProductsRequest(ids=product_ids), call, absent_expected=absent_expected)
        return {product_id: Priced(p.name, p.price.currency_code, p.price.amount_minor, p.state == catalog_pb2.AVAILABLE)
                for product_id, p in zip(product_ids, reply.products, strict=True)}

    def reserve(self, order_id: str, lines: tuple[Line, ...], call: CallContext) -> tuple[bool, list[str]]:
        request = catalog_pb2.ReserveStockRequest(reservation_id=order_id, items=[
            catalog_pb2.StockItem(product_id=line.product_id, quantity=line.quantity) for line in lines])
        reply = _call(self._clients, CATALOG.methods_by_name["ReserveStock"], request, call)
        if reply.status == catalog_pb2.RELEASED:
            raise Rejected("this order was already cancelled", "ORDER_CANCELLED")
        return reply.status == catalog_pb2.RESERVED, list(reply.short_product_ids)

    def release(self, order_id: str, call: CallContext) -> None:
        # Only the orders workload may release, with or without a user behind it (the recovery pass).
        _call(self._clients, CATALOG.methods_by_name["ReleaseStock"],
              catalog_pb2.ReleaseStockRequest(reservation_id=order_id), call.with_token(None))
