"""The accounts API over real mTLS: results, and bad requests answered with the right status and details."""

import grpc
import jwt
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2

from harness.concurrency import race
from harness.servers import PASSWORD, bearer, status_of
from runtime.errors import details_of
from shop.accounts.v1 import accounts_pb2 as pb


def _register(stub, username, password=PASSWORD, **fields):
    return stub.CreateAccount(pb.CreateAccountRequest(
        username=username, email=f"{username}@example.com", password=password, **fields), timeout=10)


def _fails(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as raised:
        call(*args, timeout=10, **kwargs)
    return raised.value


def _violations(error):
    return {(v.field, v.description) for d in details_of(error) if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations}


def _token(stub, username, password=PASSWORD, timeout=10):
    return stub.IssueToken(pb.IssueTokenRequest(grant_type="password", username=username, password=password), timeout=timeout)


def _as(stub, username, password=PASSWORD):
    """Metadata with a fresh access token of `username`."""
    return bearer(_token(stub, username, password).access_token)


def test_registered_account_reads_back_without_secrets(accounts, unique):
    edge, name = accounts(), unique()
    created = _register(edge, name, profile=pb.Profile(display_name="Ada", locale="en-GB"))
    fetched = edge.GetAccount(pb.GetAccountRequest(id=created.id), timeout=5, metadata=_as(edge, name))
    assert fetched == created
    assert (fetched.username, fetched.profile.display_name, fetched.state) == (name, "Ada", pb.ACTIVE)
    assert PASSWORD not in str(fetched) and "scrypt" not in str(fetched)


def test_duplicate_username_in_other_case_is_already_exists_with_the_field_named(accounts, unique):
    edge, name = accounts(), unique()
    _register(edge, name)
    error = _fails(edge.CreateAccount, pb.CreateAccountRequest(
        username=name.upper(), email=f"other-{name}@example.com", password=PASSWORD))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert ("username", "is already registered") in _violations(error)


def test_weak_password_and_missing_fields_are_invalid_argument_with_each_violation(accounts):
    missing = _fails(accounts().CreateAccount, pb.CreateAccountRequest(password="short"))
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(missing) == {("username", "is required"), ("email", "is required"),
                                    ("password", "must be at least 10 characters")}
    error = _fails(accounts().CreateAccount, pb.CreateAccountRequest(username="x", email="not-an-email", password="short"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {f for f, _ in _violations(error)}
    assert {"username", "email", "password"} <= fields


def test_unknown_id_is_not_found_and_malformed_id_is_invalid_argument(accounts, admin_credentials):
    edge = accounts()
    admin = _as(edge, *admin_credentials)
    assert _fails(edge.GetAccount, pb.GetAccountRequest(id="6f1c1a38-3a4e-4c71-9a55-0d1f8c2b7e10"), metadata=admin).code() == grpc.StatusCode.NOT_FOUND
    malformed = _fails(edge.GetAccount, pb.GetAccountRequest(id="../etc/passwd"), metadata=admin)
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT and ("id", "must be a UUID") in _violations(malformed)


def test_profile_update_changes_only_the_masked_fields(accounts, unique):
    edge, name = accounts(), unique()
    created = _register(edge, name, profile=pb.Profile(display_name="Before", bio="keep me"))
    owner = _as(edge, name)
    updated = edge.UpdateAccount(pb.UpdateAccountRequest(
        id=created.id, profile=pb.Profile(display_name="After", bio="ignored"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"])), timeout=5, metadata=owner)
    assert (updated.profile.display_name, updated.profile.bio) == ("After", "keep me")
    error = _fails(edge.UpdateAccount, pb.UpdateAccountRequest(id=created.id, update_mask=field_mask_pb2.FieldMask(paths=["email"])),
                   metadata=owner)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_password_grant_issues_a_jwt_that_the_published_jwks_verifies(accounts, unique):
    edge, name = accounts(), unique()
    account = _register(edge, name)
    issued = _token(edge, name)
    jwks = {k.kid: k for k in edge.GetJwks(pb.GetJwksRequest(), timeout=5).keys}
    header = jwt.get_unverified_header(issued.access_token)
    assert header["alg"] == "ES256" and header["kid"] in jwks and header["typ"] == "at+jwt"  # RFC 9068
    jwk = jwks[header["kid"]]
    key = jwt.PyJWK({"kty": jwk.kty, "crv": jwk.crv, "x": jwk.x, "y": jwk.y, "alg": jwk.alg})
    claims = jwt.decode(issued.access_token, key, algorithms=["ES256"], audience="shop-api", issuer="https://shop.local")
    assert claims["sub"] == account.id and "accounts.read" in claims["scope"].split()
    assert issued.token_type == "Bearer" and issued.refresh_token


def test_refresh_token_rotates_and_a_replayed_one_revokes_the_family(accounts, unique):
    edge, name = accounts(), unique()
    _register(edge, name)
    first = _token(edge, name).refresh_token
    second = edge.IssueToken(pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=first), timeout=5).refresh_token
    assert second and second != first
    replay = _fails(edge.IssueToken, pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=first))
    assert replay.code() == grpc.StatusCode.UNAUTHENTICATED
    # The thief's replay also ends the legitimate holder's newer token.
    assert _fails(edge.IssueToken, pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=second)).code() == grpc.StatusCode.UNAUTHENTICATED


def test_revoked_refresh_token_no_longer_works(accounts, unique):
    edge, name = accounts(), unique()
    _register(edge, name)
    refresh = _token(edge, name).refresh_token
    edge.RevokeToken(pb.RevokeTokenRequest(token=refresh), timeout=5)
    assert _fails(edge.IssueToken, pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=refresh)).code() == grpc.StatusCode.UNAUTHENTICATED


def test_repeated_wrong_passwords_lock_the_account_with_a_retry_delay(accounts, unique):
    edge, name = accounts(), unique()
    _register(edge, name)
    for _ in range(5):
        assert _fails(_token, edge, name, "wrong password!!").code() == grpc.StatusCode.UNAUTHENTICATED
    locked = _fails(_token, edge, name)  # even the right password waits out the lock
    assert locked.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry = [d for d in details_of(locked) if isinstance(d, error_details_pb2.RetryInfo)]
    assert retry and retry[0].retry_delay.seconds > 0


def test_concurrent_wrong_passwords_are_each_counted_so_only_five_are_checked(accounts, unique):
    edge, name = accounts(), unique()
    _register(edge, name)

    outcomes = race(24, lambda _: status_of(_token, edge, name, "wrong password!!", timeout=30))
    assert outcomes.count(grpc.StatusCode.UNAUTHENTICATED) == 5, outcomes
    assert outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 19, outcomes
    assert _fails(_token, edge, name).code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_wrong_current_passwords_at_change_password_count_towards_the_same_lock(accounts, unique):
    edge, name = accounts(), unique()
    account = _register(edge, name)
    owner = _as(edge, name)
    change = pb.ChangePasswordRequest(id=account.id, current_password="wrong password!!", new_password="another long passphrase")
    for _ in range(4):  # a token without the password: refused, and counted like a failed sign-in
        assert _fails(edge.ChangePassword, change, metadata=owner).code() == grpc.StatusCode.PERMISSION_DENIED
    # The sign-in that follows is the fifth attempt on this name, and the last one before the lock.
    assert _fails(_token, edge, name, "wrong password!!").code() == grpc.StatusCode.UNAUTHENTICATED
    assert _fails(edge.ChangePassword, change, metadata=owner).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _fails(_token, edge, name).code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_unsupported_grant_type_is_invalid_argument_with_the_oauth_error_code(accounts):
    error = _fails(accounts().IssueToken, pb.IssueTokenRequest(grant_type="implicit"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = [d for d in details_of(error) if isinstance(d, error_details_pb2.ErrorInfo)]
    assert info[0].reason == "UNSUPPORTED_GRANT_TYPE"


def test_deactivated_account_cannot_sign_in(accounts, unique):
    edge, name = accounts(), unique()
    account = _register(edge, name)
    issued = _token(edge, name)
    refresh = issued.refresh_token
    deactivated = edge.DeactivateAccount(pb.DeactivateAccountRequest(id=account.id), timeout=5, metadata=bearer(issued.access_token))
    assert deactivated.state == pb.DEACTIVATED
    assert _fails(_token, edge, name).code() == grpc.StatusCode.UNAUTHENTICATED
    assert _fails(edge.IssueToken, pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=refresh)).code() == grpc.StatusCode.UNAUTHENTICATED


def _reason(error):
    return [d.reason for d in details_of(error) if isinstance(d, error_details_pb2.ErrorInfo)]


def test_a_live_token_of_a_deactivated_account_can_no_longer_act(accounts, unique, admin_credentials):
    edge, name = accounts(), unique()
    account = _register(edge, name)
    owner = _as(edge, name)
    edge.DeactivateAccount(pb.DeactivateAccountRequest(id=account.id), timeout=5, metadata=owner)
    for call, request in [
        (edge.UpdateAccount, pb.UpdateAccountRequest(id=account.id, profile=pb.Profile(bio="still here"))),
        (edge.ChangePassword, pb.ChangePasswordRequest(id=account.id, current_password=PASSWORD,
                                                       new_password="another long passphrase")),
        (edge.GetAccount, pb.GetAccountRequest(id=account.id)),
    ]:
        error = _fails(call, request, metadata=owner)
        assert (error.code(), _reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, ["ACCOUNT_DEACTIVATED"])
    # An administrator still reads it, but cannot change a deactivated account either.
    admin = _as(edge, *admin_credentials)
    assert edge.GetAccount(pb.GetAccountRequest(id=account.id), timeout=5, metadata=admin).state == pb.DEACTIVATED
    error = _fails(edge.UpdateAccount, pb.UpdateAccountRequest(id=account.id, profile=pb.Profile(bio="x")), metadata=admin)
    assert (error.code(), _reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, ["ACCOUNT_DEACTIVATED"])


def test_list_accounts_pages_with_an_opaque_token(accounts, unique, admin_credentials):
    operator = accounts("operator")
    admin = _as(accounts(), *admin_credentials)
    for _ in range(3):
        _register(accounts(), unique("pager"))
    seen, token = [], ""
    while True:
        page = operator.ListAccounts(pb.ListAccountsRequest(page_size=2, page_token=token), timeout=5, metadata=admin)
        assert len(page.accounts) <= 2
        seen += [a.id for a in page.accounts]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 3
    bad = _fails(operator.ListAccounts, pb.ListAccountsRequest(page_token="not-a-token"), metadata=admin)
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A made-up token of the issued shape is not one the service sealed (runtime/page_tokens.py).
    made_up = _fails(operator.ListAccounts, pb.ListAccountsRequest(page_token="_" * 42 + "w"), metadata=admin)
    assert made_up.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("page_token", "is not a nextPageToken issued for this query") in _violations(made_up)
    assert _fails(operator.ListAccounts, pb.ListAccountsRequest(page_size=1000), metadata=admin).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_client_credentials_grant_for_a_registered_client(accounts, admin_credentials):
    operator = accounts("operator")
    created = operator.CreateClient(pb.CreateClientRequest(name="reporting", scopes=["catalog.read"]), timeout=5,
                                    metadata=_as(operator, *admin_credentials))
    issued = operator.IssueToken(pb.IssueTokenRequest(
        grant_type="client_credentials", client_id=created.client_id, client_secret=created.client_secret), timeout=5)
    claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    assert claims["sub"] == created.client_id and claims["scope"] == "catalog.read" and not issued.refresh_token
    wrong = _fails(operator.IssueToken, pb.IssueTokenRequest(
        grant_type="client_credentials", client_id=created.client_id, client_secret="guess"))
    assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_client_is_registered_only_with_scopes_the_services_declare(accounts, admin_credentials):
    """Declared beside the protos' policies (access.v1.scopes), not in a list of accounts' own:
    a scope of the right shape that no service declares is refused, naming the item."""
    operator = accounts("operator")
    error = _fails(operator.CreateClient, pb.CreateClientRequest(name="reports", scopes=["catalog.read", "reviews.read"]),
                   metadata=_as(operator, *admin_credentials))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "scopes[1]" in error.details() and "reviews.read" in error.details()
    metadata = operator.GetServerMetadata(pb.GetServerMetadataRequest(), timeout=5)
    assert set(metadata.scopes_supported) >= {"catalog.read", "orders.admin"} and "reviews.read" not in metadata.scopes_supported


def _client(operator, admin_credentials, name, scopes=("accounts.read", "accounts.write")):
    return operator.CreateClient(pb.CreateClientRequest(name=name, scopes=list(scopes)), timeout=5,
                                 metadata=_as(operator, *admin_credentials))


def test_a_refresh_token_issued_to_a_client_is_revoked_only_when_that_client_authenticates(accounts, unique, admin_credentials):
    edge, operator, name = accounts(), accounts("operator"), unique()
    _register(edge, name)
    app, other = _client(operator, admin_credentials, "app"), _client(operator, admin_credentials, "other")
    issued = edge.IssueToken(pb.IssueTokenRequest(grant_type="password", username=name, password=PASSWORD,
                                                  client_id=app.client_id, client_secret=app.client_secret), timeout=10)
    # Only the client's scopes, even though the user holds more.
    assert issued.scope == "accounts.read accounts.write"
    refresh = issued.refresh_token
    for client_id, secret in [("", ""), (app.client_id, "guess"), (other.client_id, other.client_secret)]:
        refused = _fails(edge.RevokeToken, pb.RevokeTokenRequest(token=refresh, client_id=client_id, client_secret=secret))
        assert (refused.code(), _reason(refused)) == (grpc.StatusCode.UNAUTHENTICATED, ["INVALID_CLIENT"])
    # Still alive: its own client refreshes it, then revokes the new one.
    refresh = edge.IssueToken(pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=refresh, client_id=app.client_id,
                                                   client_secret=app.client_secret), timeout=10).refresh_token
    edge.RevokeToken(pb.RevokeTokenRequest(token=refresh, client_id=app.client_id, client_secret=app.client_secret), timeout=5)
    ended = _fails(edge.IssueToken, pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=refresh,
                                                         client_id=app.client_id, client_secret=app.client_secret))
    assert (ended.code(), _reason(ended)) == (grpc.StatusCode.UNAUTHENTICATED, ["INVALID_GRANT"])


def test_a_clients_refresh_token_cannot_be_spent_without_that_client(accounts, unique, admin_credentials):
    edge, operator, name = accounts(), accounts("operator"), unique()
    _register(edge, name)
    app, other = _client(operator, admin_credentials, "app"), _client(operator, admin_credentials, "other")
    refresh = edge.IssueToken(pb.IssueTokenRequest(grant_type="password", username=name, password=PASSWORD,
                                                   client_id=app.client_id, client_secret=app.client_secret), timeout=10).refresh_token
    alone = _fails(edge.IssueToken, pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=refresh))
    assert _reason(alone) == ["INVALID_CLIENT"]
    stolen = _fails(edge.IssueToken, pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=refresh,
                                                          client_id=other.client_id, client_secret=other.client_secret))
    assert _reason(stolen) == ["INVALID_GRANT"]
    # Neither attempt spent it (no replay alarm): the right client still refreshes.
    assert edge.IssueToken(pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=refresh, client_id=app.client_id,
                                                client_secret=app.client_secret), timeout=10).refresh_token


def test_a_token_of_no_client_is_revoked_by_presenting_it_but_not_with_bad_client_credentials(accounts, unique):
    edge, name = accounts(), unique()
    _register(edge, name)
    refresh = _token(edge, name).refresh_token
    bad = _fails(edge.RevokeToken, pb.RevokeTokenRequest(token=refresh, client_id="client-unknown", client_secret="x"))
    assert _reason(bad) == ["INVALID_CLIENT"]
    assert edge.IssueToken(pb.IssueTokenRequest(grant_type="refresh_token", refresh_token=refresh), timeout=10).refresh_token


# --- defense in depth: the service re-checks the end user's token, whoever the caller is -----------

def test_a_trusted_workload_without_a_user_token_cannot_read_an_account(accounts, unique):
    edge, name = accounts(), unique()
    account = _register(edge, name)
    error = _fails(edge.GetAccount, pb.GetAccountRequest(id=account.id))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_forged_token_is_rejected_by_the_service(accounts, unique):
    edge, name = accounts(), unique()
    account = _register(edge, name)
    forged = jwt.encode({"sub": account.id, "scope": "accounts.read accounts.admin", "iss": "https://shop.local",
                         "aud": "shop-api", "exp": 4102444800, "iat": 1700000000, "jti": "x"}, "s" * 32, algorithm="HS256")
    error = _fails(edge.GetAccount, pb.GetAccountRequest(id=account.id), metadata=bearer(forged))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_user_cannot_read_another_users_account_but_an_admin_can(accounts, unique, admin_credentials):
    edge, alice, bob = accounts(), unique("alice"), unique("bob")
    _register(edge, alice)
    bobs = _register(edge, bob)
    denied = _fails(edge.GetAccount, pb.GetAccountRequest(id=bobs.id), metadata=_as(edge, alice))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert [d.reason for d in details_of(denied) if isinstance(d, error_details_pb2.ErrorInfo)] == ["NOT_OWNER"]
    assert edge.GetAccount(pb.GetAccountRequest(id=bobs.id), timeout=5, metadata=_as(edge, *admin_credentials)).id == bobs.id


def test_a_token_without_the_methods_scope_is_permission_denied(accounts, unique):
    edge, name = accounts(), unique()
    account = _register(edge, name)
    read_only = edge.IssueToken(pb.IssueTokenRequest(grant_type="password", username=name, password=PASSWORD,
                                                     scope="accounts.read"), timeout=10).access_token
    error = _fails(edge.UpdateAccount, pb.UpdateAccountRequest(id=account.id, profile=pb.Profile(bio="x")),
                   metadata=bearer(read_only))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert [d.reason for d in details_of(error) if isinstance(d, error_details_pb2.ErrorInfo)] == ["INSUFFICIENT_SCOPE"]
