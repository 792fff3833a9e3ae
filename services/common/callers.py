"""The two checks every shop service runs on each call after mTLS and the method's policy: the
forwarded token (runtime/tokens.py) and its account's standing (runtime/standing.py), configured
and built in one place.

    settings = CallerSettings.from_env(env)                 # JWKS_*, TOKEN_*, ACCOUNTS_TARGET, ...
    checks, close = remote_caller_checks(settings, tls)     # Wiring(checks=checks, on_stop=in_order(..., close))

accounts holds the keys and the standings itself, so it builds the same two checks from its own
JWKS and store (services/accounts/server.py); every other service asks accounts for both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from runtime.clients import ServiceClients, remote_token_verifier
from runtime.interceptors import Check, token_check
from runtime.server import in_order
from runtime.settings import Env, KeySource, TlsFiles
from runtime.standing import AccountStandings, remote_standing_source, standing_check, standing_window
from runtime.tokens import VerifierSettings
from services.common.standing import ACCOUNTS_SERVICE, STANDING_METHOD


@dataclass(frozen=True)
class CallerSettings:
    """How a service checks its callers' tokens: the verifier's settings, where the keys come from,
    where an account's standing is asked (accounts) and how long an answer is trusted."""

    keys: KeySource
    verifier: VerifierSettings
    accounts_target: str
    standing_seconds: float

    @classmethod
    def from_env(cls, env: Env, *, accounts_target: str | None = None) -> CallerSettings:
        """ACCOUNTS_TARGET defaults to `accounts_target`, else to where the keys come from (accounts
        publishes them too)."""
        keys = KeySource.from_env(env)
        return cls(keys=keys, verifier=VerifierSettings.from_env(env),
                   accounts_target=env.str("ACCOUNTS_TARGET", accounts_target or keys.target),
                   standing_seconds=standing_window(env))


def remote_caller_checks(settings: CallerSettings, tls: TlsFiles, *, accounts: ServiceClients | None = None,
                         clock: Callable[[], float] = time.monotonic) -> tuple[tuple[Check, ...], Callable[[], None]]:
    """The token and standing checks of a service that asks accounts for keys and standings, and
    what closes their channels at stop. `accounts`: clients the service already has to accounts
    (closed by the service itself); `clock`: how long a standing is trusted is measured with it."""
    verifier, jwks_client = remote_token_verifier(settings.keys, settings.verifier, tls)
    own = accounts is None
    accounts = accounts or ServiceClients(tls, {ACCOUNTS_SERVICE: settings.accounts_target})
    standings = AccountStandings(remote_standing_source(accounts, STANDING_METHOD), settings.standing_seconds, clock=clock)
    close = in_order(jwks_client.close, accounts.close) if own else jwks_client.close
    return (token_check(verifier), standing_check(standings)), close
