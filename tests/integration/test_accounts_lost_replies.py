"""The accounts store on a real Cassandra when a coordinator dies mid-statement: the reply of a
lightweight transaction is lost (after it was applied, or before it reached the cluster), and
the store settles the outcome itself instead of failing the sign-in or the refresh, or counting
its own lost success as someone else's (a refresh replay that would end the session)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from cassandra.connection import ConnectionException

from runtime import cassandra as cql
from runtime.stores import StoreUnavailable
from services.accounts.domain import RefreshToken, sign_in_key, utcnow
from services.accounts.store.cassandra import CassandraAccountStore
from tests.support.lost_replies import LostReplies

pytestmark = pytest.mark.cassandra

# Fragments of the statements' CQL (whose tables the store names with the keyspace).
FIRST_ATTEMPT, NEXT_ATTEMPT = "sign_in_throttles (name_key, attempts", "IF attempts = ?"
CLEAR = "sign_in_throttles WHERE name_key = ? IF EXISTS"
USE_REFRESH = "IF used = false"


@pytest.fixture
def settings(cassandra_settings):
    return cassandra_settings()


@pytest.fixture
def session(settings):
    CassandraAccountStore.connect(settings).close()  # keyspace and tables made as at a service's start
    real = cql.connect(settings)
    yield LostReplies(real)
    real.cluster.shutdown()


@pytest.fixture
def store(session, settings):
    return CassandraAccountStore(session, settings.keyspace)


def _refresh_token(store) -> str:
    token = RefreshToken(token_id=uuid.uuid4().hex, family_id="f", subject="s", client_id="", scope="accounts.read",
                         secret_hash="ab" * 32, expires_at=utcnow() + timedelta(days=1))
    store.add_refresh_token(token)
    return token.token_id


@pytest.mark.parametrize("lost", [FIRST_ATTEMPT, NEXT_ATTEMPT])
def test_a_sign_in_attempt_whose_applied_write_lost_its_reply_counts_twice_and_does_not_fail(store, session, lost):
    key = sign_in_key(f"user{uuid.uuid4().hex}")
    if lost == NEXT_ATTEMPT:
        assert store.count_sign_in_attempt(key, utcnow()).attempts == 1
    before = 0 if lost == FIRST_ATTEMPT else 1
    session.lose(lost)
    counted = store.count_sign_in_attempt(key, utcnow())
    assert session.lost, "the fault was not injected"
    # Counted again on top of the write that landed: the lock comes one attempt closer, never further.
    assert counted.attempts == before + 2
    assert store.count_sign_in_attempt(key, utcnow()).attempts == before + 3


def test_a_sign_in_attempt_that_never_reached_the_cluster_counts_once(store, session):
    key = sign_in_key(f"user{uuid.uuid4().hex}")
    session.lose(FIRST_ATTEMPT, applied=False)
    assert store.count_sign_in_attempt(key, utcnow()).attempts == 1
    assert session.lost


def test_clearing_attempts_whose_reply_was_lost_still_clears_them(store, session):
    key = sign_in_key(f"user{uuid.uuid4().hex}")
    for _ in range(3):
        store.count_sign_in_attempt(key, utcnow())
    session.lose(CLEAR)
    store.clear_sign_in_attempts(key)
    assert session.lost
    assert store.count_sign_in_attempt(key, utcnow()).attempts == 1


@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not-applied"])
def test_a_refresh_token_spent_with_a_lost_reply_is_ours_and_a_second_use_is_a_replay(store, session, applied):
    token_id = _refresh_token(store)
    session.lose(USE_REFRESH, applied=applied)
    assert store.mark_refresh_token_used(token_id), "our own lost success was taken for a replay"
    assert session.lost
    assert not store.mark_refresh_token_used(token_id)


def test_a_store_that_keeps_losing_replies_reports_the_outage_instead_of_guessing(store, session):
    token_id = _refresh_token(store)
    session.lose(USE_REFRESH, times=10)
    with pytest.raises(StoreUnavailable) as outage:  # the port's outage, the driver's error as its cause
        store.mark_refresh_token_used(token_id)
    assert isinstance(outage.value.__cause__, ConnectionException)


def test_a_refresh_token_table_made_before_used_by_existed_gains_the_column(cassandra_settings):
    settings = cassandra_settings()
    session = cql.connect(settings)
    cql.ensure_keyspace(session, settings)
    # The table as an earlier version created it.
    session.execute(f"""CREATE TABLE {settings.keyspace}.refresh_tokens (token_id text PRIMARY KEY, family_id text,
        subject text, client_id text, scope text, secret_hash text, expires_at timestamp, used boolean)""", timeout=30)
    session.cluster.shutdown()
    store = CassandraAccountStore.connect(settings)
    try:
        token_id = _refresh_token(store)
        assert store.mark_refresh_token_used(token_id)
        assert not store.mark_refresh_token_used(token_id)
    finally:
        store.close()
