"""An account's tokens_valid_after in both store adapters (SQLite and Cassandra), and in an embedded
database written before the column existed."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid

import pytest

from services.accounts.domain import Account, utcnow
from services.accounts.store.sqlite import SqliteAccountStore
from tests.support.stores import ADAPTERS, open_adapter


@pytest.fixture(params=ADAPTERS)
def store(request, tmp_path):
    opened = open_adapter(request, tmp_path, "accounts", "SqliteAccountStore", "CassandraAccountStore")
    yield opened
    opened.close()


def _account(username: str) -> Account:
    now = utcnow()
    return Account(id=str(uuid.uuid4()), username=username, email=f"{username}@example.com",
                   password_hash="scrypt$16384$8$1$00$00", created_at=now, updated_at=now)


def test_ended_sessions_are_stored_and_a_later_save_of_the_account_keeps_them(store):
    account = _account("ada")
    store.create_account(account)
    assert store.get_account(account.id).tokens_valid_after == 0
    store.end_sessions(account.id, 1_900_000_000)
    assert store.get_account(account.id).tokens_valid_after == 1_900_000_000
    store.save_account(account)  # read before the sessions were ended, saved after
    assert store.get_account(account.id).tokens_valid_after == 1_900_000_000
    assert store.find_account_by_username("ada").tokens_valid_after == 1_900_000_000
    assert [a.tokens_valid_after for a in store.list_accounts(10, None)[0]] == [1_900_000_000]


def test_an_embedded_database_from_before_the_column_gains_it_at_open(tmp_path):
    path = tmp_path / "accounts.sqlite3"
    store = SqliteAccountStore.open(str(path))
    account = _account("grace")
    store.create_account(account)
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as old:  # as a file written before tokens_valid_after existed
        old.execute("ALTER TABLE accounts DROP COLUMN tokens_valid_after")
        old.commit()
    reopened = SqliteAccountStore.open(str(path))
    try:
        assert reopened.get_account(account.id).tokens_valid_after == 0
        reopened.end_sessions(account.id, 1_900_000_000)
        assert reopened.get_account(account.id).tokens_valid_after == 1_900_000_000
    finally:
        reopened.close()
