"""One contract, two adapters: every case runs on the embedded SQLite store and on real Cassandra."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from harness.concurrency import race
from services.accounts.domain import (
    MAX_FAILED_LOGINS,
    Account,
    AuthorizationCode,
    LockedOut,
    OAuthClient,
    RefreshToken,
    SigningKey,
    sign_in_key,
    utcnow,
)
from services.accounts.store.base import DuplicateKey, InvalidPageToken, encode_page_token
from tests.support.stores import ADAPTERS, open_adapter


@pytest.fixture(params=ADAPTERS)
def store(request, tmp_path):
    opened = open_adapter(request, tmp_path, "accounts", "SqliteAccountStore", "CassandraAccountStore")
    yield opened
    opened.close()


def new_account(username: str, email: str | None = None, **fields) -> Account:
    now = utcnow()
    return Account(id=str(uuid.uuid4()), username=username, email=email or f"{username.lower()}@example.com",
                   password_hash="scrypt$16384$8$1$00$00", created_at=now, updated_at=now, **fields)


def new_refresh(subject="s", family="f", expires_in=timedelta(days=1), token_id=None) -> RefreshToken:
    return RefreshToken(token_id=token_id or uuid.uuid4().hex, family_id=family, subject=subject, client_id="",
                        scope="accounts.read", secret_hash="ab" * 32, expires_at=utcnow() + expires_in)


def test_account_round_trips_every_field(store):
    account = new_account("Ada", display_name="Ada L.", bio="math", locale="en-GB", roles=("customer", "admin"))
    store.create_account(account)
    assert store.get_account(account.id) == account
    assert store.get_account(str(uuid.uuid4())) is None


def test_username_taken_in_another_case_is_a_duplicate_and_leaves_nothing_behind(store):
    store.create_account(new_account("grace", "grace@example.com"))
    loser = new_account("GRACE", "other@example.com")
    with pytest.raises(DuplicateKey) as taken:
        store.create_account(loser)
    assert taken.value.field == "username"
    assert store.get_account(loser.id) is None
    # The loser's email was never claimed: it registers fine under a free name.
    store.create_account(new_account("grace2", "other@example.com"))


def test_email_taken_is_a_duplicate_and_the_username_stays_free(store):
    store.create_account(new_account("alan", "shared@example.com"))
    with pytest.raises(DuplicateKey) as taken:
        store.create_account(new_account("turing", "SHARED@example.com"))
    assert taken.value.field == "email"
    store.create_account(new_account("turing", "turing@example.com"))


def test_when_username_and_email_are_both_taken_the_username_is_reported(store):
    store.create_account(new_account("edsger", "edsger@example.com"))
    with pytest.raises(DuplicateKey) as taken:
        store.create_account(new_account("Edsger", "EDSGER@example.com"))
    assert taken.value.field == "username"


def test_creating_the_same_account_again_is_a_harmless_retry(store):
    account = new_account("margaret")
    store.create_account(account)
    store.create_account(account)  # as after a lost reply
    assert store.get_account(account.id) == account
    assert store.list_accounts(10, None) == ([account], None)


def test_find_by_username_ignores_case(store):
    account = new_account("Linus")
    store.create_account(account)
    assert store.find_account_by_username("lINUS").id == account.id
    assert store.find_account_by_username("nobody") is None


def test_save_changes_mutable_fields_only(store):
    account = new_account("barbara")
    store.create_account(account)
    changed = dataclasses.replace(account, display_name="B", bio="compilers", locale="en-US", state="DEACTIVATED",
                                  roles=("customer", "admin"),
                                  password_hash="scrypt$1$1$1$11$11", updated_at=utcnow() + timedelta(seconds=1))
    store.save_account(dataclasses.replace(changed, username="barbie", email="barbie@example.com"))
    assert store.get_account(account.id) == changed  # the new profile, the old username and email
    assert store.find_account_by_username("barbara").id == account.id
    assert store.find_account_by_username("barbie") is None


def test_paging_visits_every_account_once_and_ends(store):
    ids = set()
    for i in range(5):
        account = new_account(f"pager{i}")
        store.create_account(account)
        ids.add(account.id)
    seen, token, pages = [], None, 0
    while True:
        page, token = store.list_accounts(2, token)
        seen += [a.id for a in page]
        pages += 1
        if token is None:
            break
    assert sorted(seen) == sorted(ids) and pages == 3


@pytest.mark.parametrize("token", ["garbage", "e30", encode_page_token("9c5b94b1-35ad-49bb-b118-8e8fc24abdf2")[:-3] + "!!!", "eyJhZnRlciI6IDF9"])
def test_page_tokens_it_did_not_issue_are_rejected(store, token):
    with pytest.raises(InvalidPageToken):
        store.list_accounts(2, token)


def test_clients_are_unique_by_id(store):
    client = OAuthClient(client_id="client-1", name="reports", secret_hash="ff" * 32,
                         scopes=("catalog.read",), created_at=utcnow())
    store.create_client(client)
    assert store.get_client("client-1") == client
    store.create_client(client)  # the same client again: a retry, not a clash
    with pytest.raises(DuplicateKey) as taken:
        store.create_client(dataclasses.replace(client, name="impostor", secret_hash="ee" * 32))
    assert taken.value.field == "client_id"
    assert store.get_client("client-1") == client
    assert store.get_client("client-2") is None


def test_public_clients_keep_their_redirect_uris_and_a_chosen_id_is_not_taken_twice(store):
    client = OAuthClient(client_id="shop-web", name="Storefront", secret_hash="", scopes=("orders.write",),
                         created_at=utcnow(), redirect_uris=("https://shop.example/shop/", "http://127.0.0.1:8080/shop/"))
    store.create_client(client)
    assert store.get_client("shop-web") == client and store.get_client("shop-web").public
    store.create_client(client)  # a retry
    with pytest.raises(DuplicateKey):  # another registration under the same chosen id
        store.create_client(dataclasses.replace(client, redirect_uris=("https://evil.example/cb",)))
    assert store.get_client("shop-web").redirect_uris == client.redirect_uris


def new_code(expires_in=timedelta(seconds=60)) -> AuthorizationCode:
    return AuthorizationCode(code_id=uuid.uuid4().hex, secret_hash="cd" * 32, client_id="shop-web",
                             redirect_uri="https://shop.example/shop/", subject=str(uuid.uuid4()), scope="orders.read",
                             code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", family_id=uuid.uuid4().hex,
                             expires_at=utcnow() + expires_in)


def test_an_authorization_code_is_used_once_even_by_racing_exchanges(store):
    code = new_code()
    store.add_authorization_code(code)
    assert store.get_authorization_code(code.code_id) == code
    assert race(8, lambda _: store.mark_authorization_code_used(code.code_id)).count(True) == 1
    assert store.get_authorization_code(code.code_id).used
    assert store.get_authorization_code("unknown") is None
    assert store.mark_authorization_code_used("unknown") is False


def test_an_expired_code_is_still_remembered_so_its_replay_is_recognised(store):
    code = new_code(expires_in=timedelta(seconds=-5))
    store.add_authorization_code(code)
    remembered = store.get_authorization_code(code.code_id)
    assert remembered is not None and remembered.expires_at < utcnow()


def test_refresh_token_can_be_used_once(store):
    token = new_refresh()
    store.add_refresh_token(token)
    assert store.get_refresh_token(token.token_id) == token
    assert store.mark_refresh_token_used(token.token_id) is True
    assert store.mark_refresh_token_used(token.token_id) is False
    assert store.get_refresh_token(token.token_id).used
    assert store.get_refresh_token("unknown") is None
    assert store.mark_refresh_token_used("unknown") is False


def test_expired_refresh_token_is_not_returned(store):
    token = new_refresh(expires_in=timedelta(seconds=-1))
    store.add_refresh_token(token)
    assert store.get_refresh_token(token.token_id) is None
    assert store.mark_refresh_token_used(token.token_id) is False


def test_family_revocation_and_revoking_every_family_of_a_subject(store):
    store.add_refresh_token(new_refresh(subject="alice", family="fam-a"))
    store.add_refresh_token(new_refresh(subject="alice", family="fam-b"))
    store.add_refresh_token(new_refresh(subject="bob", family="fam-c"))
    store.revoke_family("fam-a", utcnow() + timedelta(days=1))
    assert store.is_family_revoked("fam-a") and not store.is_family_revoked("fam-b")
    store.revoke_subject_tokens("alice")
    assert store.is_family_revoked("fam-b") and not store.is_family_revoked("fam-c")


def test_signing_keys_are_listed_newest_first_and_can_be_retired(store):
    old = SigningKey(kid="old", private_pem=b"pem-old", created_at=utcnow() - timedelta(hours=1))
    new = SigningKey(kid="new", private_pem=b"pem-new", created_at=utcnow())
    store.add_signing_key(old)
    store.add_signing_key(new)
    assert [k.kid for k in store.list_signing_keys()] == ["new", "old"]
    retired_at = utcnow()
    store.retire_signing_key("old", retired_at)
    assert store.list_signing_keys()[1].retired_at == retired_at and store.list_signing_keys()[0].retired_at is None


def test_concurrent_registrations_of_one_username_have_exactly_one_winner(store):
    attempts = 25

    def register(i):
        try:
            store.create_account(new_account("Contested" if i % 2 else "contested", f"c{i}@example.com"))
            return "created"
        except DuplicateKey as taken:
            return taken.field

    outcomes = race(attempts, register)
    assert sorted(outcomes) == ["created"] + ["username"] * (attempts - 1), outcomes
    assert store.find_account_by_username("CONTESTED") is not None


@pytest.mark.cassandra
def test_an_orphaned_claim_from_a_registration_that_died_is_taken_over(cassandra_settings, monkeypatch):
    """Cassandra only (SQLite writes claims and account in one transaction): a username claimed
    by a registration that never wrote its account is free again once the claim is old enough."""
    from services.accounts.store import cassandra as adapter

    settings = cassandra_settings()
    store = adapter.CassandraAccountStore.connect(settings)
    try:
        dead = new_account("ghost", "ghost@example.com")
        _leave_claim(settings, dead)
        with pytest.raises(DuplicateKey):
            store.create_account(new_account("GHOST", "ghost2@example.com"))  # too young to judge
        monkeypatch.setattr(adapter, "ORPHAN_CLAIM_SECONDS", 0)
        alive = new_account("Ghost", "ghost3@example.com")
        store.create_account(alive)
        assert store.find_account_by_username("ghost").id == alive.id
        live_claim = new_account("ghost", "ghost4@example.com")
        with pytest.raises(DuplicateKey):  # a claim with an account behind it is never taken over
            store.create_account(live_claim)
    finally:
        store.close()


# --- sign-in throttling -----------------------------------------------------------------------------

def test_sign_in_attempts_count_up_to_the_lock_and_a_clear_starts_over(store):
    key, now = sign_in_key("throttled"), utcnow()
    counts = [store.count_sign_in_attempt(key, now).attempts for _ in range(MAX_FAILED_LOGINS)]
    assert counts == list(range(1, MAX_FAILED_LOGINS + 1))
    with pytest.raises(LockedOut):
        store.count_sign_in_attempt(key, now + timedelta(seconds=1))
    after_lock = store.count_sign_in_attempt(key, now + timedelta(seconds=31))
    assert after_lock.attempts == MAX_FAILED_LOGINS + 1 and after_lock.locked_until is not None
    store.clear_sign_in_attempts(key)
    assert store.count_sign_in_attempt(key, now + timedelta(seconds=31)).attempts == 1
    # Other names are untouched by all of this.
    assert store.count_sign_in_attempt(sign_in_key("bystander"), now).attempts == 1


def test_concurrent_attempts_on_one_name_are_each_counted_so_only_five_get_through(store):
    key, now, attempts = sign_in_key("raced"), utcnow(), 24

    def attempt(i):
        try:
            return store.count_sign_in_attempt(key, now).attempts
        except LockedOut:
            return "locked"

    outcomes = race(attempts, attempt)
    counted = sorted(o for o in outcomes if o != "locked")
    assert counted == list(range(1, MAX_FAILED_LOGINS + 1)), outcomes
    assert outcomes.count("locked") == attempts - MAX_FAILED_LOGINS


def test_an_embedded_store_from_before_the_throttle_table_opens_and_keeps_its_accounts(tmp_path):
    """SQLite only: files written when sign-in counters lived on the account row lose those columns."""
    import sqlite3

    from services.accounts.store.sqlite import SqliteAccountStore

    path = str(tmp_path / "old.sqlite3")
    with sqlite3.connect(path) as old:
        old.execute("""CREATE TABLE accounts (
            id TEXT PRIMARY KEY, username TEXT NOT NULL, username_key TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
            display_name TEXT NOT NULL, bio TEXT NOT NULL, locale TEXT NOT NULL, state TEXT NOT NULL,
            roles TEXT NOT NULL, failed_logins INTEGER NOT NULL, locked_until INTEGER,
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)""")
        old.execute("INSERT INTO accounts VALUES ('a1', 'old', 'old', 'o@example.com', 'o@example.com', 'h', '', '', '', "
                    "'ACTIVE', '[\"customer\"]', 3, NULL, 0, 0)")
    store = SqliteAccountStore.open(path)
    try:
        assert store.find_account_by_username("old").id == "a1"
        store.create_account(new_account("newer"))
        assert store.find_account_by_username("newer") is not None
    finally:
        store.close()


def _leave_claim(settings, account) -> None:
    """What a registration that died between its username claim and its account row leaves behind,
    written with a session of the test's own."""
    from runtime import cassandra as cql

    session = cql.connect(settings)
    try:
        session.execute(f"INSERT INTO {settings.keyspace}.accounts_by_username (username_key, account_id) VALUES (%s, %s)",
                        (account.username_key, account.id))
    finally:
        session.cluster.shutdown()
