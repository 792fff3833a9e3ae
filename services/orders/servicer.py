"""gRPC entry point of the orders service: proto <-> domain, domain errors -> status."""

from __future__ import annotations

import grpc

from runtime.convert import timestamp
from runtime.errors import translate_errors
from runtime.interceptors import current_call, required_claims
from services.orders import domain
from services.orders.service import OrdersService
from shop.catalog.v1 import catalog_pb2
from shop.orders.v1 import orders_pb2 as pb
from shop.orders.v1 import orders_pb2_grpc as pb_grpc

_ERRORS = {
    domain.StillBeingPlacedAtDeadline: grpc.StatusCode.DEADLINE_EXCEEDED,
    domain.StillBeingPlaced: grpc.StatusCode.ABORTED,  # 409 with Retry-After, as the Idempotency-Key draft says
    domain.DependencyFailed: grpc.StatusCode.UNAVAILABLE,
    domain.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    domain.NotFound: grpc.StatusCode.NOT_FOUND,
    domain.IdempotencyConflict: grpc.StatusCode.FAILED_PRECONDITION,
    domain.Rejected: grpc.StatusCode.FAILED_PRECONDITION,
    domain.Forbidden: grpc.StatusCode.PERMISSION_DENIED,
}
_errors = translate_errors(_ERRORS, "orders.shop")
_STATUS = {domain.PENDING: pb.PENDING, domain.CONFIRMED: pb.CONFIRMED, domain.CANCELLED: pb.CANCELLED,
           domain.REJECTED: pb.REJECTED}
ADMIN_SCOPE = "orders.admin"


def _deadline_spent(context: grpc.ServicerContext) -> bool:
    """Whether the caller's own deadline leaves it too little time to retry after the RetryInfo we
    would send (the service's wait may also end at its own cap, MAX_CALL_SECONDS, with time to spare)."""
    left = context.time_remaining()
    return left is not None and left < domain.StillBeingPlaced.retry_after


def order_to_proto(order: domain.Order) -> pb.Order:
    def money(amount: int, currency: str):
        return catalog_pb2.Money(currency_code=currency, amount_minor=amount) if currency else None

    return pb.Order(
        id=order.id, user_id=order.user_id, status=_STATUS[order.status], status_reason=order.reason,
        items=[pb.OrderItem(product_id=line.product_id, quantity=line.quantity, name=line.name,
                            unit_price=money(line.unit_price_minor, line.currency)) for line in order.lines],
        total=money(order.total_minor, order.currency),
        create_time=timestamp(order.created_at), update_time=timestamp(order.updated_at))


class OrdersServicer(pb_grpc.OrdersServiceServicer):
    def __init__(self, orders: OrdersService):
        self._orders = orders

    @_errors
    def CreateOrder(self, request, context):
        claims = required_claims()
        items = [(i.product_id, i.quantity) for i in request.items]
        try:
            placed = self._orders.place(claims.subject, items, request.idempotency_key, current_call())
        except domain.OutcomeUnknown:
            raise
        except domain.StillBeingPlaced:
            if _deadline_spent(context):
                raise domain.StillBeingPlacedAtDeadline() from None
            raise
        return order_to_proto(placed)

    @_errors
    def GetOrder(self, request, context):
        claims = required_claims()
        return order_to_proto(self._orders.get(request.id, claims.subject, ADMIN_SCOPE in claims.scopes))

    @_errors
    def ListMyOrders(self, request, context):
        orders, token = self._orders.list_mine(required_claims().subject, request.page_size, request.page_token)
        return pb.ListMyOrdersResponse(orders=[order_to_proto(o) for o in orders], next_page_token=token or "")

    @_errors
    def CancelOrder(self, request, context):
        claims = required_claims()
        return order_to_proto(self._orders.cancel(request.id, claims.subject, ADMIN_SCOPE in claims.scopes, current_call()))
