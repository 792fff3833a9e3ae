"""The accounts service on a real Cassandra, called over real mTLS."""

import grpc
import pytest

from harness import servers
from harness.concurrency import race
from services.accounts.server import AccountsSettings, create_server
from shop.accounts.v1 import accounts_pb2 as pb
from shop.accounts.v1 import accounts_pb2_grpc

pytestmark = pytest.mark.cassandra
PASSWORD = servers.PASSWORD


@pytest.fixture(scope="module")
def cassandra_env(pki_dir, tmp_path_factory, cassandra_settings):
    return servers.service_env("accounts", pki_dir, tmp_path_factory.mktemp("data"), **servers.cassandra_env(cassandra_settings()))


def _replica(pki_dir, env):
    with (servers.in_process(create_server, AccountsSettings.from_env(env), pki_dir) as port,
          servers.channel(pki_dir, port, "edge") as ch):
        yield accounts_pb2_grpc.AccountsServiceStub(ch)


@pytest.fixture(scope="module")
def cassandra_accounts(pki_dir, cassandra_env):
    yield from _replica(pki_dir, cassandra_env)


@pytest.fixture(scope="module")
def second_replica(pki_dir, cassandra_env, cassandra_accounts):
    """Another accounts server on the same keyspace: two replicas behind one name."""
    yield from _replica(pki_dir, cassandra_env)


def test_concurrent_registrations_of_one_username_let_exactly_one_through(cassandra_accounts):
    attempts = 24

    outcomes = race(attempts, lambda i: servers.status_of(cassandra_accounts.CreateAccount, pb.CreateAccountRequest(
        username="Contested" if i % 2 else "contested", email=f"c{i}@example.com", password=PASSWORD), timeout=30))
    assert outcomes.count(grpc.StatusCode.OK) == 1
    assert outcomes.count(grpc.StatusCode.ALREADY_EXISTS) == attempts - 1


def test_sign_in_refresh_and_replay_detection_work_on_cassandra(cassandra_accounts):
    account = cassandra_accounts.CreateAccount(pb.CreateAccountRequest(
        username="cassie", email="cassie@example.com", password=PASSWORD), timeout=10)
    first = cassandra_accounts.IssueToken(pb.IssueTokenRequest(grant_type="password", username="CASSIE", password=PASSWORD), timeout=10)
    fetched = cassandra_accounts.GetAccount(pb.GetAccountRequest(id=account.id), timeout=5, metadata=servers.bearer(first.access_token))
    assert fetched == account
    second = cassandra_accounts.IssueToken(pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=first.refresh_token), timeout=10)
    with pytest.raises(grpc.RpcError) as replay:
        cassandra_accounts.IssueToken(pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=first.refresh_token), timeout=10)
    assert replay.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError):
        cassandra_accounts.IssueToken(pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=second.refresh_token), timeout=10)


def test_wrong_passwords_spread_over_two_replicas_lock_after_five_checks(cassandra_accounts, second_replica):
    replicas = [cassandra_accounts, second_replica]
    cassandra_accounts.CreateAccount(pb.CreateAccountRequest(
        username="guarded", email="guarded@example.com", password=PASSWORD), timeout=10)

    guess = pb.IssueTokenRequest(grant_type="password", username="guarded", password="wrong password!!")
    outcomes = race(24, lambda i: servers.status_of(replicas[i % 2].IssueToken, guess, timeout=30))
    assert outcomes.count(grpc.StatusCode.UNAUTHENTICATED) == 5, outcomes
    assert outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 19, outcomes
    for replica in replicas:  # the store decides, so every replica refuses even the right password now
        with pytest.raises(grpc.RpcError) as locked:
            replica.IssueToken(pb.IssueTokenRequest(grant_type="password", username="guarded", password=PASSWORD), timeout=10)
        assert locked.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
