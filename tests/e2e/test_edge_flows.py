"""The whole path over real HTTP: edge (gunicorn) -> mTLS gRPC -> accounts, as a client uses it."""

import base64
import json
from urllib.parse import urlsplit

import jwt
import requests

from harness.servers import PASSWORD
from harness.shop import auth


def test_register_sign_in_read_and_update_the_profile(stack):
    account = stack.register("erin")
    issued = stack.token("erin")
    assert issued["token_type"] == "Bearer" and issued["expires_in"] > 0
    me = requests.get(f"{stack.url}/v1/accounts/{account['id']}", headers=auth(issued["access_token"]), timeout=10)
    assert me.status_code == 200 and me.json()["username"] == "erin"
    updated = requests.patch(f"{stack.url}/v1/accounts/{account['id']}", json={"displayName": "Erin", "bio": "hi"},
                             headers=auth(issued["access_token"]), timeout=10)
    assert updated.status_code == 200, updated.text
    assert updated.json()["profile"] == {"displayName": "Erin", "bio": "hi", "locale": ""}
    # Only the fields in the body change.
    again = requests.patch(f"{stack.url}/v1/accounts/{account['id']}", json={"locale": "en-GB"},
                           headers=auth(issued["access_token"]), timeout=10)
    assert again.json()["profile"] == {"displayName": "Erin", "bio": "hi", "locale": "en-GB"}


def test_token_endpoint_speaks_rfc_6749(stack):
    stack.register("frank")
    reply = requests.post(f"{stack.url}/oauth2/token", data={"grant_type": "password", "username": "frank",
                                                             "password": "wrong password!!"}, timeout=10)
    assert reply.status_code == 400 and reply.json()["error"] == "invalid_grant"
    assert reply.headers["Cache-Control"] == "no-store"
    unsupported = requests.post(f"{stack.url}/oauth2/token", data={"grant_type": "implicit"}, timeout=10)
    assert unsupported.json()["error"] == "unsupported_grant_type"
    json_body = requests.post(f"{stack.url}/oauth2/token", json={"grant_type": "password"}, timeout=10)
    assert json_body.status_code == 400 and json_body.json()["error"] == "invalid_request"
    too_wide = requests.post(f"{stack.url}/oauth2/token", data={"grant_type": "password", "username": "frank",
                                                                "password": PASSWORD, "scope": "accounts.admin"}, timeout=10)
    assert too_wide.json()["error"] == "invalid_scope"


def test_refresh_rotates_and_revocation_ends_the_session(stack):
    stack.register("gina")
    first = stack.token("gina")
    refreshed = requests.post(f"{stack.url}/oauth2/token", data={"grant_type": "refresh_token",
                                                                 "refresh_token": first["refresh_token"]}, timeout=10)
    assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] != first["refresh_token"]
    revoked = requests.post(f"{stack.url}/oauth2/revoke", data={"token": refreshed.json()["refresh_token"]}, timeout=10)
    assert revoked.status_code == 200
    again = requests.post(f"{stack.url}/oauth2/token", data={"grant_type": "refresh_token",
                                                             "refresh_token": refreshed.json()["refresh_token"]}, timeout=10)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_client_credentials_with_basic_authentication(stack):
    admin = stack.token(*stack.admin)["access_token"]
    created = requests.post(f"{stack.url}/v1/clients", json={"name": "reports", "scopes": ["catalog.read"]},
                            headers=auth(admin), timeout=10)
    assert created.status_code == 200, created.text
    client_id, secret = created.json()["clientId"], created.json()["clientSecret"]
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    issued = requests.post(f"{stack.url}/oauth2/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": f"Basic {basic}"}, timeout=10)
    assert issued.status_code == 200 and issued.json()["scope"] == "catalog.read"
    wrong = base64.b64encode(f"{client_id}:guess".encode()).decode()
    refused = requests.post(f"{stack.url}/oauth2/token", data={"grant_type": "client_credentials"},
                            headers={"Authorization": f"Basic {wrong}"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_published_keys_and_metadata_verify_the_issued_tokens(stack):
    stack.register("hank")
    token = stack.token("hank")["access_token"]
    metadata = requests.get(f"{stack.url}/.well-known/oauth-authorization-server", timeout=10).json()
    assert metadata["token_endpoint"].endswith("/oauth2/token") and "accounts.read" in metadata["scopes_supported"]
    assert metadata["jwks_uri"] == f"{metadata['issuer']}/.well-known/jwks.json"
    keys = requests.get(f"{stack.url}{urlsplit(metadata['jwks_uri']).path}", timeout=10).json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == kid))
    claims = jwt.decode(token, key, algorithms=["ES256"], audience="shop-api", issuer=metadata["issuer"])
    assert claims["scope"]


def test_readiness_health_and_errors_are_problem_json(stack):
    assert requests.get(f"{stack.url}/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{stack.url}/readyz", timeout=5).json() == {"status": "ready"}
    stack.register("jules")
    again = requests.post(f"{stack.url}/v1/accounts", json={
        "username": "JULES", "email": "jules2@example.com", "password": PASSWORD}, timeout=10)
    assert again.status_code == 409 and again.headers["Content-Type"] == "application/problem+json"
    assert again.json()["violations"] == [{"field": "username", "description": "is already registered"}]
    assert json.loads(again.text)["request_id"] == again.headers["X-Request-Id"]


def test_lockout_is_429_with_retry_after(stack):
    stack.register("ivan")
    for _ in range(5):
        requests.post(f"{stack.url}/oauth2/token", data={"grant_type": "password", "username": "ivan",
                                                         "password": "wrong password!!"}, timeout=10)
    locked = requests.post(f"{stack.url}/oauth2/token", data={"grant_type": "password", "username": "ivan",
                                                              "password": PASSWORD}, timeout=10)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0


def test_the_root_points_to_the_documentation(stack):
    links = requests.get(f"{stack.url}/", timeout=10).json()["links"]
    assert links["docs"] == "/docs" and links["openapi"] == "/openapi.json"
    assert requests.get(f"{stack.url}{links['openapi']}", timeout=10).status_code == 200
