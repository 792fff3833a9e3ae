"""Wiring of the accounts service: settings -> store -> use cases -> servicer -> gRPC server."""

from __future__ import annotations

import logging
from datetime import timedelta

from runtime.interceptors import token_check
from runtime.server import ServiceServer
from runtime.settings import ServerSettings
from runtime.tokens import JwksCache, TokenVerifier, VerifierSettings
from services.accounts.domain import PasswordHasher
from services.accounts.oauth import AuthorizationServer, TokenSettings
from services.accounts.service import AccountsService
from services.accounts.servicer import AccountsServicer, active_caller_check
from services.accounts.store import open_store
from shop.accounts.v1 import accounts_pb2, accounts_pb2_grpc

_LOGGER = logging.getLogger(__name__)
SERVICE = "accounts"
DEFAULT_PORT = 50051
DESCRIPTOR = accounts_pb2.DESCRIPTOR.services_by_name["AccountsService"]


def load_settings(environ=None) -> ServerSettings:
    return ServerSettings.from_env(SERVICE, DEFAULT_PORT, environ)


def token_settings(settings: ServerSettings) -> TokenSettings:
    env = settings.env
    verifier = VerifierSettings.from_env(env)  # sign with exactly what verifiers expect
    return TokenSettings(
        issuer=verifier.issuer,
        audience=verifier.audience,
        access_ttl=timedelta(seconds=env.int("ACCESS_TOKEN_TTL_SECONDS", 900, minimum=30, maximum=86400)),
        refresh_ttl=timedelta(seconds=env.int("REFRESH_TOKEN_TTL_SECONDS", 30 * 86400, minimum=60)),
    )


def password_hasher(settings: ServerSettings) -> PasswordHasher:
    # scrypt's cost (N) may be lowered for tests; 2**14 (16 MiB, ~50 ms) is the floor for real use.
    return PasswordHasher(n=2 ** settings.env.int("PASSWORD_SCRYPT_LOG2_N", 14, minimum=10, maximum=20))


def create_server(settings: ServerSettings) -> tuple[ServiceServer, int]:
    """Builds the server (port bound, not started). GRPC_PORT=0 picks a free port."""
    store = open_store(settings)
    accounts = AccountsService(store, password_hasher(settings))
    oauth = AuthorizationServer(store, accounts, token_settings(settings))
    oauth.ensure_signing_key()
    servicer = AccountsServicer(accounts, oauth)
    verifier_settings = VerifierSettings.from_env(settings.env)
    # This service holds the keys itself, so it verifies forwarded tokens against its own JWKS.
    verifier = TokenVerifier(verifier_settings, JwksCache(oauth.jwks, verifier_settings.jwks_refresh_seconds))
    server = ServiceServer(
        settings,
        descriptors=[DESCRIPTOR],
        register=lambda s: accounts_pb2_grpc.add_AccountsServiceServicer_to_server(servicer, s),
        ready_check=store.ping,
        on_stop=store.close,
        checks=(token_check(verifier), active_caller_check(accounts)),
    )
    return server, server.port
