"""gRPC entry point of the catalog service: proto <-> domain, domain errors -> status."""

from __future__ import annotations

import grpc

from runtime.convert import timestamp
from runtime.errors import translate_errors
from services.catalog import domain
from services.catalog.service import CatalogService
from shop.catalog.v1 import catalog_pb2 as pb
from shop.catalog.v1 import catalog_pb2_grpc as pb_grpc

_ERRORS = {
    domain.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    domain.NotFound: grpc.StatusCode.NOT_FOUND,
    domain.InsufficientStock: grpc.StatusCode.FAILED_PRECONDITION,
    domain.StockLimitExceeded: grpc.StatusCode.FAILED_PRECONDITION,
    domain.ReservationConflict: grpc.StatusCode.FAILED_PRECONDITION,
    domain.Contended: grpc.StatusCode.ABORTED,
}
_errors = translate_errors(_ERRORS, "catalog.shop")
_STATUS = {domain.RESERVED: pb.RESERVED, domain.REJECTED: pb.REJECTED, domain.RELEASED: pb.RELEASED}


# The fields a caller sets that the proto names as the domain does (all of PRODUCT_FIELDS but the price).
_SAME_NAMED = tuple(name for name in domain.PRODUCT_FIELDS if name != "price")


def product_to_proto(product: domain.Product) -> pb.Product:
    return pb.Product(
        id=product.id, **{name: getattr(product, name) for name in _SAME_NAMED},
        price=pb.Money(currency_code=product.currency, amount_minor=product.price_minor), stock=product.stock,
        state=pb.AVAILABLE if product.state == domain.AVAILABLE else pb.ARCHIVED,
        create_time=timestamp(product.created_at), update_time=timestamp(product.updated_at))


def _product_fields(product: pb.Product) -> dict:
    """What a request sets, by domain field (services/common/masks.py): the price as its two parts
    (None when the request has no price, an amount None when not given: absent, not 0)."""
    fields: dict = {name: getattr(product, name) for name in _SAME_NAMED}
    price = product.price
    amount = price.amount_minor if price.HasField("amount_minor") else None
    fields["price"] = {"currency": price.currency_code, "price_minor": amount} if product.HasField("price") else None
    return fields


def reservation_to_proto(reservation: domain.Reservation) -> pb.Reservation:
    return pb.Reservation(
        reservation_id=reservation.reservation_id, status=_STATUS[reservation.status],
        items=[pb.StockItem(product_id=p, quantity=q) for p, q in reservation.items],
        short_product_ids=list(reservation.short_product_ids))


class CatalogServicer(pb_grpc.CatalogServiceServicer):
    def __init__(self, catalog: CatalogService):
        self._catalog = catalog

    @_errors
    def CreateProduct(self, request, context):
        return product_to_proto(self._catalog.create(**_product_fields(request.product)))

    @_errors
    def GetProduct(self, request, context):
        return product_to_proto(self._catalog.get(request.id))

    @_errors
    def BatchGetProducts(self, request, context):
        return pb.BatchGetProductsResponse(products=[product_to_proto(p) for p in self._catalog.batch_get(list(request.ids))])

    @_errors
    def ListProducts(self, request, context):
        products, token = self._catalog.list_products(request.page_size, request.page_token, request.query)
        return pb.ListProductsResponse(products=[product_to_proto(p) for p in products], next_page_token=token or "")

    @_errors
    def UpdateProduct(self, request, context):
        changes = _product_fields(request.product)
        return product_to_proto(self._catalog.update(request.id, changes, list(request.update_mask.paths)))

    @_errors
    def ArchiveProduct(self, request, context):
        return product_to_proto(self._catalog.archive(request.id))

    @_errors
    def SetStock(self, request, context):
        return product_to_proto(self._catalog.set_stock(request.id, request.quantity))

    @_errors
    def AdjustStock(self, request, context):
        return product_to_proto(self._catalog.adjust_stock(request.id, request.delta))

    @_errors
    def ReserveStock(self, request, context):
        items = [(i.product_id, i.quantity) for i in request.items]
        return reservation_to_proto(self._catalog.reserve(request.reservation_id, items))

    @_errors
    def ReleaseStock(self, request, context):
        return reservation_to_proto(self._catalog.release(request.reservation_id))
