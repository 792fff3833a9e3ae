"""The authorization server's code rules that need a clock: a code lives 60 s; the password
grant is off unless a setting turns it on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from harness import servers
from services.accounts.domain import PasswordHasher, pkce_s256, utcnow
from services.accounts.oauth import AuthorizationServer, InvalidGrant, OAuthError, TokenSettings
from services.accounts.server import AccountsSettings
from services.accounts.service import AccountsService
from services.accounts.store.sqlite import SqliteAccountStore

VERIFIER = "v" * 20 + "0123456789abcdefghijklmnopq"
REDIRECT = "https://shop.example/shop/"


class Clock:
    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now


@pytest.fixture
def server(tmp_path):
    clock = Clock()
    store = SqliteAccountStore.open(str(tmp_path / "accounts.sqlite3"))
    accounts = AccountsService(store, PasswordHasher(n=2**10), clock=clock)
    accounts.register("coder", "coder@example.com", "correct horse battery", {})
    oauth = AuthorizationServer(store, accounts, TokenSettings(issuer="https://i", audience="a"), clock=clock)
    oauth.register_client("Storefront", ["orders.read"], client_id="shop-web", public=True, redirect_uris=(REDIRECT,))
    yield oauth, clock
    store.close()


def _code(oauth) -> str:
    code, _scope = oauth.authorize(username="coder", password="correct horse battery", response_type="code",
                                   client_id="shop-web", redirect_uri=REDIRECT, scope="orders.read",
                                   code_challenge=pkce_s256(VERIFIER), code_challenge_method="S256")
    return code


def test_a_code_is_good_for_60_seconds(server):
    oauth, clock = server
    fresh = _code(oauth)
    clock.now += timedelta(seconds=59)
    assert oauth.issue("authorization_code", client_id="shop-web", code=fresh, redirect_uri=REDIRECT,
                       code_verifier=VERIFIER).access_token
    stale = _code(oauth)
    clock.now += timedelta(seconds=61)
    with pytest.raises(InvalidGrant):
        oauth.issue("authorization_code", client_id="shop-web", code=stale, redirect_uri=REDIRECT, code_verifier=VERIFIER)


def test_the_password_grant_is_off_by_default(tmp_path):
    for name in ("ca.pem", "accounts.pem", "accounts.key"):  # only their presence is checked here
        (tmp_path / name).write_text("")
    env = servers.service_env("accounts", tmp_path, tmp_path)
    del env["OAUTH_PASSWORD_GRANT"]  # the tests' own default
    assert "password" not in AccountsSettings.from_env(env).tokens.grant_types
    assert "password" in AccountsSettings.from_env({**env, "OAUTH_PASSWORD_GRANT": "on"}).tokens.grant_types


def test_without_the_setting_a_password_grant_is_an_unsupported_grant_type(server):
    oauth, _clock = server
    with pytest.raises(OAuthError) as refused:
        oauth.issue("password", username="coder", password="correct horse battery")
    assert refused.value.error == "unsupported_grant_type"
