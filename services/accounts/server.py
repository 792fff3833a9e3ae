"""Wiring of the accounts service: settings -> store -> use cases -> servicer -> gRPC server."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from runtime.interceptors import token_check
from runtime.server import ServiceServer, Wiring, serve
from runtime.settings import Env, ServerSettings
from runtime.standing import AccountStandings, standing_check, standing_window
from runtime.tokens import VerifierSettings, token_verifier
from services.accounts.domain import PasswordHasher
from services.accounts.oauth import AuthorizationServer, TokenSettings
from services.accounts.service import AccountsService
from services.accounts.servicer import AccountsServicer, standing_in_store
from services.accounts.store import AccountStore, open_store
from services.registry import server_settings
from shop.accounts.v1 import accounts_pb2, accounts_pb2_grpc

_LOGGER = logging.getLogger(__name__)
SERVICE = "accounts"  # its entry in services/workloads.toml
DESCRIPTOR = accounts_pb2.DESCRIPTOR.services_by_name["AccountsService"]


@dataclass(frozen=True)
class AccountsSettings:
    server: ServerSettings
    verifier: VerifierSettings
    tokens: TokenSettings
    # scrypt's cost N = 2**scrypt_log2_n; may be lowered for tests, 14 (16 MiB, ~50 ms) is the floor for real use.
    scrypt_log2_n: int
    # How long an account's standing (active, tokens valid after) is trusted once read (other replicas,
    # and the other services, see a deactivation or ended sessions within this time; this replica at once).
    active_check_seconds: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AccountsSettings:
        env = Env(environ)
        verifier = VerifierSettings.from_env(env)
        return cls(
            server=server_settings(SERVICE, environ),
            verifier=verifier,
            # Tokens are signed with exactly what verifiers expect.
            tokens=TokenSettings(
                issuer=verifier.issuer, audience=verifier.audience,
                access_ttl=timedelta(seconds=env.int("ACCESS_TOKEN_TTL_SECONDS", 900, minimum=5, maximum=86400)),
                refresh_ttl=timedelta(seconds=env.int("REFRESH_TOKEN_TTL_SECONDS", 30 * 86400, minimum=5)),
                password_grant=env.choice("OAUTH_PASSWORD_GRANT", "off", ("on", "off")) == "on"),
            scrypt_log2_n=env.int("PASSWORD_SCRYPT_LOG2_N", 14, minimum=10, maximum=20),
            active_check_seconds=standing_window(env),
        )

    def password_hasher(self) -> PasswordHasher:
        return PasswordHasher(n=2 ** self.scrypt_log2_n)


load_settings = AccountsSettings.from_env


def build_accounts(settings: AccountsSettings, *, store: AccountStore | None = None,
                   standing_clock: Callable[[], float] = time.monotonic) -> Wiring:
    """The accounts service's parts, each made from the settings unless given: a test passes its own
    store (which the service then owns and closes) or a clock for how long a standing is trusted."""
    store = store if store is not None else open_store(settings.server)
    standings = AccountStandings(standing_in_store(store), settings.active_check_seconds, clock=standing_clock)
    accounts = AccountsService(store, settings.password_hasher(), standing_changed=standings.forget)
    oauth = AuthorizationServer(store, accounts, settings.tokens)
    oauth.ensure_signing_key()
    servicer = AccountsServicer(accounts, oauth)
    # This service holds the keys itself, so it verifies forwarded tokens against its own JWKS.
    verifier = token_verifier(settings.verifier, oauth.jwks)
    return Wiring(descriptors=[DESCRIPTOR],
                  register=lambda s: accounts_pb2_grpc.add_AccountsServiceServicer_to_server(servicer, s),
                  ready_check=store.ping, on_stop=store.close, checks=(token_check(verifier), standing_check(standings)))


def create_server(settings: AccountsSettings, **parts) -> tuple[ServiceServer, int]:
    """The accounts service's gRPC server (port bound, not started); `parts` as build_accounts takes them."""
    return serve(settings.server, build_accounts(settings, **parts))
