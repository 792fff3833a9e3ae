"""gRPC entry point of the accounts service: proto <-> domain, domain errors -> status."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2, timestamp_pb2

from runtime.convert import timestamp
from runtime.errors import translate_errors
from runtime.interceptors import current_claims
from runtime.standing import Standing, StandingSource, StandingUnavailable
from runtime.stores import StoreUnavailable
from services.accounts import domain
from services.accounts.oauth import (
    CHALLENGE_METHODS,
    RESPONSE_TYPES,
    AuthorizationServer,
    InvalidClient,
    InvalidGrant,
    OAuthError,
)
from services.accounts.service import AccountsService, WrongPassword
from services.accounts.store.base import AccountStore
from shop.accounts.v1 import accounts_pb2 as pb
from shop.accounts.v1 import accounts_pb2_grpc as pb_grpc

_DOMAIN = "accounts.shop"

# The one table from domain errors to status codes (most specific first).
_ERRORS = {
    InvalidGrant: grpc.StatusCode.UNAUTHENTICATED,
    InvalidClient: grpc.StatusCode.UNAUTHENTICATED,
    OAuthError: grpc.StatusCode.INVALID_ARGUMENT,
    domain.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    WrongPassword: grpc.StatusCode.PERMISSION_DENIED,
    domain.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    domain.NotFound: grpc.StatusCode.NOT_FOUND,
    domain.InvalidCredentials: grpc.StatusCode.UNAUTHENTICATED,
    domain.AccountInactive: grpc.StatusCode.FAILED_PRECONDITION,
    domain.AdminLockout: grpc.StatusCode.FAILED_PRECONDITION,
    domain.LockedOut: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
_STATES = {domain.ACTIVE: pb.ACTIVE, domain.DEACTIVATED: pb.DEACTIVATED}
_errors = translate_errors(_ERRORS, _DOMAIN)


def standing_in_store(store: AccountStore) -> StandingSource:
    """The standing of an account as this service's own store holds it (one read by primary key), for
    the standing check every call of this service passes (runtime/standing.py)."""
    def standing(account_id: str) -> Standing | None:
        try:
            account = store.get_account(account_id)
        except StoreUnavailable as outage:
            raise StandingUnavailable(f"store unavailable: {outage}") from None
        return None if account is None else Standing(account.active, account.tokens_valid_after)

    return standing


def account_to_proto(account: domain.Account) -> pb.Account:
    """The public view of an account: never the password hash or sign-in counters."""
    return pb.Account(
        id=account.id, username=account.username, email=account.email,
        profile=pb.Profile(**{name: getattr(account, name) for name in domain.PROFILE_FIELDS}),
        state=_STATES[account.state], roles=list(account.roles),
        create_time=timestamp(account.created_at), update_time=timestamp(account.updated_at),
    )


def _profile_dict(profile: pb.Profile) -> dict[str, str]:
    return {name: getattr(profile, name) for name in domain.PROFILE_FIELDS}


class AccountsServicer(pb_grpc.AccountsServiceServicer):
    def __init__(self, accounts: AccountsService, oauth: AuthorizationServer):
        self._accounts = accounts
        self._oauth = oauth

    @_errors
    def CreateAccount(self, request, context):
        account = self._accounts.register(request.username, request.email, request.password, _profile_dict(request.profile))
        return account_to_proto(account)

    @_errors
    def GetAccount(self, request, context):
        return account_to_proto(self._accounts.get(request.id))

    @_errors
    def UpdateAccount(self, request, context):
        paths = list(request.update_mask.paths)
        account = self._accounts.update_profile(request.id, _profile_dict(request.profile), paths)
        return account_to_proto(account)

    @_errors
    def ChangePassword(self, request, context):
        self._accounts.change_password(request.id, request.current_password, request.new_password)
        return empty_pb2.Empty()

    @_errors
    def DeactivateAccount(self, request, context):
        claims = current_claims()
        return account_to_proto(self._accounts.deactivate(request.id, actor=claims.subject if claims else ""))

    @_errors
    def ReactivateAccount(self, request, context):
        return account_to_proto(self._accounts.reactivate(request.id))

    @_errors
    def SignOutEverywhere(self, request, context):
        self._accounts.sign_out_everywhere(request.id)
        return empty_pb2.Empty()

    @_errors
    def GetAccountStanding(self, request, context):
        account = self._accounts.get(request.id)
        valid_after = timestamp_pb2.Timestamp(seconds=account.tokens_valid_after) if account.tokens_valid_after else None
        return pb.AccountStanding(active=account.active, tokens_valid_after=valid_after)

    @_errors
    def ListAccounts(self, request, context):
        accounts, next_token = self._accounts.list(request.page_size, request.page_token)
        return pb.ListAccountsResponse(accounts=[account_to_proto(a) for a in accounts], next_page_token=next_token or "")

    @_errors
    def Authorize(self, request, context):
        asked = {"response_type": request.response_type, "client_id": request.client_id,
                 "redirect_uri": request.redirect_uri, "scope": request.scope,
                 "code_challenge": request.code_challenge, "code_challenge_method": request.code_challenge_method}
        if request.validate_only:
            client, scope = self._oauth.check_authorization_request(**asked)
            return pb.AuthorizeResponse(client_name=client.name, scope=scope)
        code, scope = self._oauth.authorize(username=request.username, password=request.password, **asked)
        return pb.AuthorizeResponse(code=code, scope=scope)

    @_errors
    def GetServerMetadata(self, request, context):
        return pb.ServerMetadata(grant_types_supported=list(self._oauth.grant_types),
                                 response_types_supported=list(RESPONSE_TYPES),
                                 code_challenge_methods_supported=list(CHALLENGE_METHODS),
                                 scopes_supported=self._oauth.scopes_supported)

    @_errors
    def IssueToken(self, request, context):
        issued = self._oauth.issue(
            request.grant_type, username=request.username, password=request.password,
            client_id=request.client_id, client_secret=request.client_secret,
            refresh_token=request.refresh_token, scope=request.scope,
            code=request.code, redirect_uri=request.redirect_uri, code_verifier=request.code_verifier,
        )
        return pb.TokenResponse(access_token=issued.access_token, token_type="Bearer", expires_in=issued.expires_in,
                                refresh_token=issued.refresh_token, scope=issued.scope)

    @_errors
    def RevokeToken(self, request, context):
        if not request.token:
            raise domain.InvalidArgument([("token", "is required")])
        self._oauth.revoke(request.token, client_id=request.client_id, client_secret=request.client_secret)
        return empty_pb2.Empty()

    @_errors
    def GetJwks(self, request, context):
        return pb.Jwks(keys=[pb.Jwk(**key) for key in self._oauth.jwks()])

    @_errors
    def CreateClient(self, request, context):
        client, secret = self._oauth.register_client(
            request.name, list(request.scopes), client_id=request.client_id, public=request.client_type == pb.PUBLIC,
            redirect_uris=tuple(request.redirect_uris))
        return pb.CreateClientResponse(client_id=client.client_id, client_secret=secret, scopes=list(client.scopes),
                                       redirect_uris=list(client.redirect_uris),
                                       client_type=pb.PUBLIC if client.public else pb.CONFIDENTIAL)

    @_errors
    def RotateSigningKey(self, request, context):
        return pb.Jwks(keys=[pb.Jwk(**key) for key in self._oauth.rotate_signing_key()])
