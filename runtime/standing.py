"""Account standing: whether the account behind a user's token may still act, checked on every call.

Access tokens are verified without asking accounts, so on their own they stay good until they
expire. Every service therefore installs one more check after the token's, fed by the account's
standing (active or not, and since when its access tokens count):

    standings = AccountStandings(source, ttl=5.0)                # source(account_id) -> Standing | None
    ServiceServer(..., checks=(token_check(verifier), standing_check(standings)))

The accounts service reads its own store; every other service asks it over mTLS
(`remote_standing_source`, given the method that answers). An answer is trusted for `ttl` seconds per account, so a deactivation,
a password change or a sign-out everywhere holds on the replica that made it at once (it forgets
its answer) and everywhere else within `ttl`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory

from runtime import errors
from runtime.calls import CallContext, DeadlineExpired
from runtime.clients import ServiceClients
from runtime.descriptors import load_method
from runtime.interceptors import Check, current_call, current_claims
from runtime.lru import LruCache
from runtime.policy import MethodPolicy
from runtime.settings import Env
from runtime.tokens import Claims

_LOGGER = logging.getLogger(__name__)
# Kept back from the call's budget when accounts is asked (at most this, and at most this share of
# what is left), so that if it cannot answer, the refusal (UNAVAILABLE) still reaches the caller
# before its deadline does, while a short deadline is still mostly spent on the call itself.
_ANSWER_SECONDS = 0.25
_ANSWER_SHARE = 0.25


@dataclass(frozen=True)
class Standing:
    """What a token's account allows: `active`, and the epoch second before which (by `iat`) its
    access tokens are refused (0: none are)."""

    active: bool
    tokens_valid_after: int = 0

    def refuses_issued_at(self, issued_at: float) -> bool:
        return issued_at < self.tokens_valid_after


class StandingUnavailable(Exception):
    """The standing could not be learnt (accounts or its store did not answer)."""


class NoTimeForStanding(StandingUnavailable):
    """The call being served has no time left to learn the standing in: its own deadline, not an outage."""


StandingSource = Callable[[str], "Standing | None"]  # None: no account has this id


def standing_window(env: Env) -> float:
    """Seconds an account's standing is trusted before it is asked again (0: asked on every call)."""
    return env.float("ACCOUNT_ACTIVE_CHECK_SECONDS", 5.0, minimum=0.0)


def acts_for_an_account(claims: Claims) -> bool:
    """Whether a token acts for an account: a client_credentials token's subject is its client (the
    client acting as itself), not an account, so no account standing applies to it."""
    return not (claims.client_id and claims.subject == claims.client_id)


class AccountStandings:
    """Standings by account id, each answer trusted for `ttl` seconds of `clock`; at most `size`
    accounts are remembered (the least recently asked go first)."""

    def __init__(self, source: StandingSource, ttl: float, *, size: int = 100_000,
                 clock: Callable[[], float] = time.monotonic):
        self._source, self._ttl, self._clock = source, ttl, clock
        self._answers: LruCache[str, tuple[float, Standing | None]] = LruCache(size)  # id -> (good until, answer)
        # Bumped by forget(): an answer read before a change is not kept after it.
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, account_id: str) -> Standing | None:
        """The account's standing, None when there is no such account; StandingUnavailable when the
        source cannot answer."""
        cached = self._answers.get(account_id)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        with self._lock:
            generation = self._generation
        answer = self._source(account_id)
        self._keep(account_id, answer, generation)
        return answer

    def _keep(self, account_id: str, answer: Standing | None, generation: int) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return  # a change was made while the source was read: this answer may predate it
            self._answers.put(account_id, (self._clock() + self._ttl, answer))

    def forget(self, account_id: str) -> None:
        """Drops the account's answer, and any being read right now: its next check asks again."""
        with self._lock:
            self._answers.drop(account_id)
            self._generation += 1


def standing_check(standings: AccountStandings) -> Check:
    """Refuses a call made with the token of an account that may no longer act: deactivated or unknown
    (PERMISSION_DENIED, reason ACCOUNT_DEACTIVATED), or a token issued before the account's
    `tokens_valid_after` (UNAUTHENTICATED, reason TOKEN_REVOKED). Calls without a user's token, and
    tokens of clients acting as themselves, pass. Runs after token_check."""

    def check(policy: MethodPolicy, request, context: grpc.ServicerContext) -> None:
        claims = current_claims()
        if claims is None or not acts_for_an_account(claims):
            return
        try:
            standing = standings.get(claims.subject)
        except NoTimeForStanding:
            errors.abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, "no time was left to check the account of this token",
                         reason="DEADLINE_EXCEEDED", domain="access")
        except StandingUnavailable as error:
            # Fail closed: a check that cannot be made must not pass, or an outage of accounts (or
            # cutting a service off from it) would let every deactivated account act again. The
            # answer is retryable, and accounts whose standing is cached are not affected.
            _LOGGER.warning("account standing unavailable: %s", error)
            errors.abort(context, grpc.StatusCode.UNAVAILABLE, "the account of this token cannot be checked now; retry later",
                         reason="STANDING_UNAVAILABLE", domain="access", retry_after=1.0)
        if standing is None or not standing.active:
            errors.abort(context, grpc.StatusCode.PERMISSION_DENIED, "the account of this token is deactivated",
                         reason="ACCOUNT_DEACTIVATED", domain="access")
        if standing.refuses_issued_at(claims.raw.get("iat", 0)):
            errors.abort(context, grpc.StatusCode.UNAUTHENTICATED,
                         "this token was issued before its account's sessions were ended (a password change, a "
                         "sign-out everywhere or a deactivation); sign in again", reason="TOKEN_REVOKED", domain="access")

    return check


def remote_standing_source(clients: ServiceClients, method_name: str) -> StandingSource:
    """Asks the accounts service's `method_name` ("/package.Service/Method", through `clients`, which
    must have its target) for a standing.
    Like every call between services it waits for a connection within the budget of the call being
    served (so a restart of accounts costs a short wait, not a refusal), less a reserve for answering
    (_ANSWER_SECONDS, or _ANSWER_SHARE of a shorter budget)."""
    method = load_method(method_name)
    request_type = message_factory.GetMessageClass(method.input_type)

    def source(account_id: str) -> Standing | None:
        serving = current_call()
        try:
            left = serving.time_left()
        except DeadlineExpired:
            raise NoTimeForStanding("the call's deadline has passed") from None
        budget = left - min(_ANSWER_SECONDS, left * _ANSWER_SHARE)
        try:
            # Without the user's token: the question is the workload's, and the answer no secret to it.
            call = CallContext.starting_now(budget, request_id=serving.request_id)
            reply: Any = clients.call(method, request_type(id=account_id), call)
        except DeadlineExpired:
            raise StandingUnavailable("no time left to ask accounts") from None
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None  # no account has this id (or could: not a UUID)
            raise StandingUnavailable(f"accounts answered {error.code().name}") from None
        valid_after = reply.tokens_valid_after.seconds if reply.HasField("tokens_valid_after") else 0
        return Standing(active=reply.active, tokens_valid_after=valid_after)

    return source
