"""Fixtures for tests against real gRPC servers over real mTLS."""

from __future__ import annotations

import itertools

import pytest

from harness import servers
from services.accounts.server import AccountsSettings
from services.accounts.server import create_server as create_accounts_server
from shop.accounts.v1 import accounts_pb2_grpc

_names = itertools.count()


@pytest.fixture(scope="module")
def accounts_env(pki_dir, tmp_path_factory):
    return servers.service_env("accounts", pki_dir, tmp_path_factory.mktemp("accounts-data"))


@pytest.fixture(scope="module")
def accounts_port(pki_dir, accounts_env):
    with servers.in_process(create_accounts_server, AccountsSettings.from_env(accounts_env), pki_dir) as port:
        yield port


@pytest.fixture(scope="module")
def admin_credentials(accounts_env, accounts_port):
    return servers.create_admin(accounts_env, "rootadmin")


@pytest.fixture
def accounts(pki_dir, accounts_port):
    """An AccountsService stub calling as the given workload: accounts("edge"), accounts("catalog")."""
    channels = []

    def stub(cert="edge", **kwargs):
        channels.append(servers.channel(pki_dir, accounts_port, cert, **kwargs))
        return accounts_pb2_grpc.AccountsServiceStub(channels[-1])

    yield stub
    for ch in channels:
        ch.close()


@pytest.fixture
def unique():
    """A fresh username-safe name per call, so tests sharing a server never collide."""
    return lambda prefix="user": f"{prefix}{next(_names)}x{id(_names) % 10000}"
