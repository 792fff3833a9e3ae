"""The token verifier shared by the edge and the services: one good token passes, each bad one fails."""

import pytest

from runtime.access import AccessDenied, authorize
from runtime.policy import MethodPolicy
from runtime.tokens import JwksCache, TokenError, TokenVerifier, VerifierSettings, bearer_token
from tests.support.bad_tokens import AUDIENCE, ISSUER, bad_tokens, good_claims, jwks_of, new_issuer_key, sign

KEY = new_issuer_key()
SUBJECT = "6f1c1a38-3a4e-4c71-9a55-0d1f8c2b7e10"


def verifier(fetch=lambda: jwks_of(KEY), interval=30.0):
    return TokenVerifier(VerifierSettings(issuer=ISSUER, audience=AUDIENCE), JwksCache(fetch, interval))


def test_a_well_formed_token_yields_subject_and_scopes():
    claims = verifier().verify(sign(KEY, good_claims(SUBJECT, "accounts.read orders.write")))
    assert claims.subject == SUBJECT and claims.scopes == {"accounts.read", "orders.write"}


@pytest.mark.parametrize("name", sorted(bad_tokens(KEY, SUBJECT)))
def test_bad_tokens_are_rejected(name):
    with pytest.raises(TokenError) as rejected:
        verifier().verify(bad_tokens(KEY, SUBJECT)[name])
    assert rejected.value.error == "invalid_token"


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   "])
def test_authorization_header_must_be_bearer(header):
    with pytest.raises(TokenError):
        bearer_token(header)


def _policy(**fields):
    base = {"full_method": "/x.S/M", "scopes": frozenset({"accounts.read"}), "callers": frozenset({"edge"}),
            "owner_field": "", "bypass_scopes": frozenset()}
    return MethodPolicy(**{**base, **fields})


def test_missing_scope_is_reported_by_name():
    claims = verifier().verify(sign(KEY, good_claims(SUBJECT, "orders.read")))
    with pytest.raises(AccessDenied) as denied:
        authorize(_policy(), claims, None)
    assert denied.value.reason == "INSUFFICIENT_SCOPE" and denied.value.missing_scopes == {"accounts.read"}


def test_owner_rule_admits_the_owner_and_bypass_scopes_only():
    from shop.accounts.v1 import accounts_pb2 as pb

    policy = _policy(owner_field="id", bypass_scopes=frozenset({"accounts.admin"}))
    owner = verifier().verify(sign(KEY, good_claims(SUBJECT)))
    authorize(policy, owner, pb.GetAccountRequest(id=SUBJECT))
    with pytest.raises(AccessDenied):
        authorize(policy, owner, pb.GetAccountRequest(id="someone-else"))
    admin = verifier().verify(sign(KEY, good_claims("admin-id", "accounts.read accounts.admin")))
    authorize(policy, admin, pb.GetAccountRequest(id=SUBJECT))
