"""Signing key rotation in the running system (issue 8, item 11): right after RotateSigningKey, a
token signed with the new key is accepted at the edge and by the services behind it on its very
first use, and tokens signed before the rotation keep working until they expire."""

import jwt
import requests

from harness import servers
from shop.accounts.v1 import accounts_pb2 as pb
from shop.accounts.v1 import accounts_pb2_grpc


def _get(stack, path, token):
    return requests.get(f"{stack.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _rotate(stack):
    admin = stack.token(*stack.admin)["access_token"]
    with servers.channel(stack.pki_dir, stack.accounts.port, "operator") as channel:
        accounts_pb2_grpc.AccountsServiceStub(channel).RotateSigningKey(
            pb.RotateSigningKeyRequest(), timeout=10, metadata=servers.bearer(admin))


def test_a_token_of_a_rotated_in_key_is_accepted_everywhere_on_first_use(stack):
    account = stack.register("rotator")
    before = stack.token("rotator")["access_token"]
    paths = [f"/v1/accounts/{account['id']}", "/v1/orders"]  # the edge, accounts and orders each verify
    for _ in range(4):  # every verifier has fetched the key set just now
        assert all(_get(stack, path, before).status_code == 200 for path in paths)

    _rotate(stack)
    after = stack.token("rotator")["access_token"]
    assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
    for token in (after, before):
        for _ in range(4):
            for path in paths:
                reply = _get(stack, path, token)
                assert reply.status_code == 200, (path, reply.text)
