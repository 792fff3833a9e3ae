"""Order use cases: place (a small saga across accounts and catalog), read, list, cancel, recover.

Placing an order: record it PENDING -> account active? -> prices -> reserve stock (the order
id is the reservation id) -> CONFIRMED. If a dependency fails after the order is recorded,
the reservation is released (releasing is harmless if nothing was reserved) and the order
is CANCELLED; if even that fails, the order stays PENDING and the recovery pass finishes
the job. Only CONFIRMED orders are ever acknowledged, so recovery may always cancel. An order
refused on its merits (out of stock, a product unavailable, the account inactive) is REJECTED:
it never held anything.

A retry with the same Idempotency-Key answers the first request's outcome (domain.answer_for),
or, if that request failed on the way and held nothing, places the order (`_key_outcome`): while
the first request is still placing the order, the retry waits for it as long as its own deadline
allows, then answers StillBeingPlaced (retry later), never the PENDING order.

Limits the protos declare hold for results too: a product's merged quantity stays within one
line's bound, and the total within the largest amount of money.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from runtime.calls import CallContext, DeadlineExpired, serving
from runtime.paging import InvalidPageToken
from runtime.stores import StoreUnavailable
from runtime.validation import declared_max_of
from services.common.ids import parse_uuid
from services.common.paging import bad_page_token, page_size
from services.orders import domain
from services.orders.domain import (
    CANCELLED,
    CONFIRMED,
    PENDING,
    REJECTED,
    DependencyFailed,
    IdempotencyConflict,
    NotFound,
    Order,
    Rejected,
)
from services.orders.ports import AccountsPort, CatalogPort
from services.orders.store.base import OrderStore
from shop.catalog.v1 import catalog_pb2
from shop.orders.v1 import orders_pb2

_LOGGER = logging.getLogger(__name__)
COMPENSATION_SECONDS = 3.0  # a release gets its own budget: it matters more than the caller's deadline
# What a saga keeps back from the caller's deadline (at most a fifth of it) to cancel, release and
# answer in; a release gets at least MIN_RELEASE_SECONDS, the caller's deadline or not.
COMPENSATION_RESERVE_SECONDS = 2.0
MIN_RELEASE_SECONDS = 1.0
ANSWER_MARGIN_SECONDS = 0.3  # the compensation ends this long before the caller's deadline, to answer in
# How often a retry looks for the first request's outcome in the store when that request runs in
# another replica (one in this process wakes it as soon as it ends).
_OUTCOME_POLL_SECONDS = 0.05
_RECLAIMS = 3  # times a retry tries to take over a failed first request's key from racing retries
# The declared bounds (orders.proto, catalog.proto) an order's results must keep: one line's quantity
# (which a product listed twice would otherwise pass) and an amount of money (the order's total).
MOST_PER_PRODUCT = declared_max_of(orders_pb2.OrderItem, "quantity")
MOST_AMOUNT_MINOR = declared_max_of(catalog_pb2.Money, "amount_minor")


@dataclasses.dataclass(frozen=True)
class _Refusal:
    """An order refused on its merits: recorded REJECTED as `order` stands (priced, if it got that
    far) and answered with `error`, plus a violation for each request item whose product is at fault
    (`faults`: product id -> what is wrong with it; `field`: the item's field to name)."""

    order: Order
    error: Rejected
    field: str = ""
    faults: dict[str, str] = dataclasses.field(default_factory=dict)

    def answer(self, items: list[tuple[str, int]]) -> Rejected:
        if not self.faults:
            return self.error
        return Rejected(str(self.error), self.error.reason, domain.item_violations(items, self.field, self.faults))


class OrdersService:
    def __init__(self, store: OrderStore, accounts: AccountsPort, catalog: CatalogPort, *, clock=domain.utcnow,
                 after_reserve: Callable[[Order], None] = lambda order: None):
        self._store = store
        self._accounts = accounts
        self._catalog = catalog
        self._clock = clock
        self._after_reserve = after_reserve  # a seam for crash tests (harness/faults.py); a no-op otherwise
        # Orders this process is placing right now: alive, whatever their age, so recovery leaves them be.
        # (Another replica tells a live order from a dead one by age alone: RECOVERY_AGE_SECONDS must
        # exceed the longest a request can take.)
        self._placing: set[str] = set()
        self._placing_lock = threading.Lock()
        self._placing_ended = threading.Condition(self._placing_lock)  # wakes retries waiting for an outcome

    # --- placing -------------------------------------------------------------------------------

    def place(self, user_id: str, items: list[tuple[str, int]], idempotency_key: str, call: CallContext) -> Order:
        """Places the order for `call`'s user, or raises: InvalidArgument, IdempotencyConflict, Rejected
        and Forbidden leave nothing held; DependencyFailed means it was cancelled (or left to recovery);
        StillBeingPlaced means the first request with this key has not finished (retry later)."""
        lines = domain.normalise_lines(items)
        domain.check_quantities(lines, MOST_PER_PRODUCT)
        # The saga's steps end COMPENSATION_RESERVE_SECONDS before the caller's deadline, so a step
        # that fails late still leaves time to give back what was held and answer the caller. Kept
        # back from the whole budget: a key claim that stalled leaves the saga less time, not the reserve.
        saga = call.sooner(COMPENSATION_RESERVE_SECONDS)
        order_id = domain.new_order_id()
        if idempotency_key:
            answered, order_id = self._key_outcome(user_id, idempotency_key, lines, order_id, call)
            if answered is not None:
                return answered
        now = self._clock()
        order = Order(id=order_id, user_id=user_id, lines=lines, status=PENDING, created_at=now, updated_at=now)
        with self._placing_lock:
            self._placing.add(order.id)
        try:
            with serving(saga):
                self._store.create_order(order)
                try:
                    outcome = self._complete(order, saga)
                except StoreUnavailable as lost:  # the confirmation's reply may be all that was lost
                    settled = self._settle_after_lost_reply(order, call, idempotency_key, lost)
                    if settled.status == CONFIRMED:
                        return settled
                    raise
            if isinstance(outcome, _Refusal):
                self._record_refusal(outcome)  # in the time kept back, like a compensation
        except DependencyFailed as failure:  # a service did not answer (in time): nothing may stay held
            self._compensate(order, domain.TIMED_OUT if failure.timed_out else domain.DEPENDENCY_FAILED, call)
            raise
        except (Rejected, domain.Forbidden) as refused:  # a service refused the request or the token
            self._compensate(order, refused.reason.lower(), call)
            raise
        finally:
            with self._placing_ended:
                self._placing.discard(order.id)
                self._placing_ended.notify_all()
        if isinstance(outcome, _Refusal):
            raise outcome.answer(items)
        return domain.answer_for(outcome)

    def _settle_after_lost_reply(self, order: Order, call: CallContext, idempotency_key: str,
                                 lost: StoreUnavailable) -> Order:
        """The store failed after the order was recorded, perhaps on the confirmation itself, whose
        write may have applied with only its reply lost. The saga compensates as for a failed
        dependency: an order found CONFIRMED is answered as placed, a cancelled one as the outage
        it was. If even that cannot be learnt in time, the outcome is unknown: a caller with an
        Idempotency-Key is told to ask again with it (OutcomeUnknown; recovery settles the order
        meanwhile), never told that nothing was placed."""
        try:
            with serving(call):  # not the saga's time, which is spent: the time kept back for this
                return self._compensate(order, domain.DEPENDENCY_FAILED, call)
        except StoreUnavailable:
            if idempotency_key:
                raise domain.OutcomeUnknown() from lost
            raise lost from None

    def _key_outcome(self, user_id: str, key: str, lines, order_id: str, call: CallContext) -> tuple[Order | None, str]:
        """Binds the Idempotency-Key to `order_id`, or finds what it is bound to: (the order to answer
        with, None) when the key's order is final; (None, the id to place the order under) otherwise.

        A key means at most one placed order. Its first request's outcome is answered again (the
        order, or its refusal); but a first request that failed on the way (a dependency down or too
        slow, or interrupted) and was cancelled holding nothing placed nothing, so a retry places the
        order: the key is moved to a new order id (compare-and-set, so two retries cannot both)."""
        fingerprint = domain.fingerprint(lines)
        winner, claimed_fingerprint = self._store.claim_idempotency_key(user_id, key, order_id, fingerprint)
        for _ in range(_RECLAIMS):
            if winner == order_id:
                return None, order_id
            if claimed_fingerprint != fingerprint:
                raise IdempotencyConflict("this Idempotency-Key was used for a different order",
                                          [("idempotency_key", "already used with other items")])
            first = self._outcome(winner, call)
            if first is None:
                # No order under the claimed id: the first request died between claiming the key and
                # recording its order, or is between those two writes now. Either way this retry
                # places it under the claimed id, so the key still means one order: every step is
                # idempotent by order id, and whichever of two placings confirms first wins.
                return None, winner
            if not domain.failed_on_the_way(first):
                return domain.answer_for(first), order_id
            if self._store.reclaim_idempotency_key(user_id, key, first.id, order_id):
                return None, order_id
            winner, claimed_fingerprint = self._store.claim_idempotency_key(user_id, key, order_id, fingerprint)
        raise domain.StillBeingPlaced()  # other retries keep taking the key over: this one steps back

    def _outcome(self, order_id: str, call: CallContext) -> Order | None:
        """The order placed under a reused key once it is final, or None if it was never recorded.

        While it is PENDING (the first request is still placing it) this waits, for no longer than
        `call` has time: woken when a placing in this process ends, looking again every
        _OUTCOME_POLL_SECONDS for one in another replica. StillBeingPlaced when the time runs out."""
        while True:
            order = self._store.get_order(order_id)
            if order is None or order.status != PENDING:
                return order
            try:
                left = call.time_left()
            except DeadlineExpired:
                raise domain.StillBeingPlaced() from None
            with self._placing_ended:
                self._placing_ended.wait(min(left, _OUTCOME_POLL_SECONDS))

    @staticmethod
    def _in_time(call: CallContext) -> CallContext:
        """Stops the saga between steps once the request is out of time (it is then compensated)."""
        try:
            call.time_left()
        except DeadlineExpired as expired:
            raise domain.DependencyTimedOut(str(expired)) from None
        return call

    def _complete(self, order: Order, call: CallContext) -> Order | _Refusal:
        """The saga's steps after the PENDING order is recorded, in order: the account, the prices,
        the stock, the confirmation. Returns the order as it ended (CONFIRMED here, or as a twin
        placing or a cancellation finished it meanwhile) or the refusal `place` records; a dependency
        that fails or refuses raises, and `place` compensates."""
        if not self._accounts.account_is_active(order.user_id, self._in_time(call)):
            return _Refusal(order, Rejected("the account is not active", "ACCOUNT_INACTIVE"))
        prices = self._catalog.price_many([line.product_id for line in order.lines], self._in_time(call))
        unavailable = {line.product_id: "does not exist or is archived" for line in order.lines
                       if line.product_id not in prices or not prices[line.product_id].available}
        if unavailable:
            return _Refusal(order, Rejected(f"{len(unavailable)} of the order's products cannot be ordered",
                                            "PRODUCT_UNAVAILABLE"), "product_id", unavailable)
        priced_lines = tuple(dataclasses.replace(line, name=priced.name, unit_price_minor=priced.unit_price_minor,
                                                 currency=priced.currency)
                             for line, priced in ((line, prices[line.product_id]) for line in order.lines))
        currencies = {line.currency for line in priced_lines}
        if len(currencies) > 1:
            return _Refusal(order, Rejected("items are priced in different currencies", "MIXED_CURRENCIES"))
        priced_order = dataclasses.replace(order, lines=priced_lines, currency=currencies.pop())
        try:
            priced_order.total_minor = domain.total_of(priced_order.lines, MOST_AMOUNT_MINOR)
        except Rejected as too_large:
            return _Refusal(priced_order, too_large)
        reserved, short = self._catalog.reserve(order.id, order.lines, self._in_time(call))
        if not reserved:  # names and prices kept: the user sees what was refused
            return _Refusal(priced_order, Rejected("not enough stock", "OUT_OF_STOCK"), "quantity",
                            dict.fromkeys(short, "not enough stock"))
        self._after_reserve(order)
        confirmed = dataclasses.replace(priced_order, status=CONFIRMED, updated_at=self._clock())
        if self._store.transition(confirmed, PENDING):
            self._store.settle(order.id)
            return confirmed
        # Finished by someone else while we worked: confirmed by a twin placing of the same key (same
        # order, same reservation), or cancelled by the customer or the recovery pass, or refused to a
        # twin (its stock goes back). This request answers as a retry would.
        return self._compensate(order, "cancelled_while_placing", call)

    def _record_refusal(self, refusal: _Refusal) -> None:
        """Records a refused order as REJECTED, with the refusal's reason (it holds nothing)."""
        rejected = dataclasses.replace(refusal.order, status=REJECTED, reason=refusal.error.reason.lower(),
                                       updated_at=self._clock())
        self._store.transition(rejected, PENDING)
        self._store.settle(refusal.order.id)

    def _compensate(self, order: Order, reason: str, call: CallContext) -> Order:
        """Cancels the order, then releases its reservation; if catalog cannot be reached, the
        order stays on the recovery list. The decision is recorded before the stock moves, and an
        order confirmed meanwhile (by a twin placing of the same key) keeps its stock. Returns the
        order as it now is."""
        left = call.deadline - time.monotonic() - ANSWER_MARGIN_SECONDS  # ends before the caller's deadline
        release = call.detached(max(MIN_RELEASE_SECONDS, min(COMPENSATION_SECONDS, left)))
        with serving(release):
            current = self._cancel_unless_confirmed(order.id, reason)
        if current.status == CONFIRMED:
            return current
        try:
            self._catalog.release(order.id, release)
        except DependencyFailed as failure:
            _LOGGER.warning("order %s left for recovery: release failed (%s)", order.id, failure)
            return current
        self._store.settle(order.id)
        return current

    def _cancel_unless_confirmed(self, order_id: str, reason: str) -> Order:
        """Moves a PENDING order to CANCELLED; returns the order as it then is (CONFIRMED: nothing may be released)."""
        current = self._existing(order_id)
        while current.status == PENDING:
            cancelled = dataclasses.replace(current, status=CANCELLED, reason=reason, updated_at=self._clock())
            if self._store.transition(cancelled, PENDING):
                return cancelled
            current = self._existing(order_id)  # it moved on meanwhile: look again
        return current

    def _existing(self, order_id: str) -> Order:
        """An order this service recorded (orders are never deleted)."""
        order = self._store.get_order(order_id)
        if order is None:
            raise LookupError(f"order {order_id} was recorded but cannot be read back")
        return order

    # --- reading, cancelling --------------------------------------------------------------------

    def get(self, order_id: str, user_id: str, is_admin: bool) -> Order:
        order = self._store.get_order(parse_uuid(order_id))
        if order is None or (order.user_id != user_id and not is_admin):
            raise NotFound(f"order {order_id} does not exist")  # another user's order is not even confirmed to exist
        return order

    def list_mine(self, user_id: str, size: int, page_token: str) -> tuple[list[Order], str | None]:
        try:
            return self._store.list_user_orders(user_id, page_size(size), page_token or None)
        except InvalidPageToken:
            raise bad_page_token() from None

    def cancel(self, order_id: str, user_id: str, is_admin: bool, call: CallContext) -> Order:
        """Cancels and gives the stock back; cancelling a cancelled or rejected order (which holds
        nothing) returns it unchanged."""
        order = self.get(order_id, user_id, is_admin)
        while True:
            if order.status in (CANCELLED, REJECTED):
                return order
            cancelled = dataclasses.replace(order, status=CANCELLED, reason=domain.CANCELLED_BY_USER, updated_at=self._clock())
            # The cancellation is recorded first and the order put on the recovery list, so a crash
            # before the release below is finished by the recovery pass, never lost.
            self._store.mark_unsettled(order.id)
            if self._store.transition(cancelled, order.status):
                break
            order = self._existing(order.id)  # it changed under us (confirmed, or cancelled): decide again
        try:
            self._catalog.release(order.id, call.detached(COMPENSATION_SECONDS))
            self._store.settle(order.id)
        except DependencyFailed:
            _LOGGER.warning("order %s cancelled; stock release left for recovery", order.id)
        return cancelled

    # --- recovery -------------------------------------------------------------------------------

    def recover(self, older_than: timedelta) -> int:
        """Resolves unsettled orders older than `older_than`: a PENDING order was never
        acknowledged, so it is cancelled; every one gets its stock released. Returns how many."""
        resolved = 0
        for order in self._store.unsettled(self._clock() - older_than):
            with self._placing_lock:
                if order.id in self._placing:
                    continue  # still being placed here: the saga settles it itself
            if order.status == PENDING:
                interrupted = dataclasses.replace(order, status=CANCELLED, reason=domain.INTERRUPTED, updated_at=self._clock())
                if not self._store.transition(interrupted, PENDING):
                    order = self._existing(order.id)  # it moved on meanwhile: look again
            if order.status == CONFIRMED:
                self._store.settle(order.id)
                continue
            try:
                self._catalog.release(order.id, CallContext.starting_now(COMPENSATION_SECONDS))
            except DependencyFailed as failure:
                _LOGGER.warning("recovery: catalog unreachable (%s); will retry", failure)
                break
            self._store.settle(order.id)
            resolved += 1
        if resolved:
            _LOGGER.info("recovery resolved %d orders", resolved)
        return resolved
