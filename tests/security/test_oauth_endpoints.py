"""The OAuth2 endpoints against forged requests (issue 8, items 14 and 15): metadata that a Host
header cannot redirect, revocation that only the token's own client can ask for, and forms that
refuse what the OpenAPI document says they refuse."""

import base64

import requests

from harness.servers import PASSWORD
from harness.stack import ISSUER


def _basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_metadata_urls_come_from_the_configured_issuer_whatever_the_host_header(stack):
    forged = requests.get(f"{stack.url}/.well-known/oauth-authorization-server", timeout=10,
                          headers={"Host": "attacker.example", "X-Forwarded-Host": "attacker.example"})
    document = forged.json()
    assert document["issuer"] == ISSUER
    urls = [document[k] for k in ("jwks_uri", "token_endpoint", "revocation_endpoint")]
    assert all(url.startswith(f"{ISSUER}/") for url in urls), urls
    assert "attacker.example" not in forged.text


def test_revocation_needs_the_tokens_own_client(stack):
    admin = stack.token(*stack.admin)["access_token"]
    created = requests.post(f"{stack.url}/v1/clients", json={"name": "mobile", "scopes": ["accounts.read"]},
                            headers={"Authorization": f"Bearer {admin}"}, timeout=10).json()
    client_id, secret = created["clientId"], created["clientSecret"]
    stack.register("revoker")
    issued = requests.post(f"{stack.url}/oauth2/token", headers=_basic(client_id, secret), timeout=10, data={
        "grant_type": "password", "username": "revoker", "password": PASSWORD})
    assert issued.status_code == 200, issued.text
    refresh = issued.json()["refresh_token"]

    for headers, form in [({}, {}), (_basic(client_id, "guess"), {}), ({}, {"client_id": client_id, "client_secret": "guess"})]:
        refused = requests.post(f"{stack.url}/oauth2/revoke", data={"token": refresh, **form}, headers=headers, timeout=10)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client", refused.text
        assert refused.headers["WWW-Authenticate"].startswith("Basic")

    revoked = requests.post(f"{stack.url}/oauth2/revoke", timeout=10,
                            data={"token": refresh, "client_id": client_id, "client_secret": secret})
    assert revoked.status_code == 200
    again = requests.post(f"{stack.url}/oauth2/token", headers=_basic(client_id, secret), timeout=10,
                          data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_a_form_parameter_given_twice_is_refused_and_an_unknown_one_ignored(stack):
    # RFC 6749 section 3.2: no parameter more than once; unrecognized ones are ignored.
    twice = requests.post(f"{stack.url}/oauth2/token", timeout=10,
                          data=[("grant_type", "client_credentials"), ("grant_type", "password")])
    assert twice.status_code == 400 and twice.json()["error"] == "invalid_request", twice.text
    revoke_twice = requests.post(f"{stack.url}/oauth2/revoke", data=[("token", "a.b"), ("token", "c.d")], timeout=10)
    assert revoke_twice.status_code == 400 and "more than once" in revoke_twice.json()["error_description"]
    unknown = requests.post(f"{stack.url}/oauth2/revoke", data=[("token", "a.b"), ("x", "1"), ("x", "2")], timeout=10)
    assert unknown.status_code == 200, unknown.text


def test_revocation_without_a_token_is_refused_as_the_document_says(stack):
    document = requests.get(f"{stack.url}/openapi.json", timeout=10).json()
    form = document["paths"]["/oauth2/revoke"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert form["schema"]["required"] == ["token"] and form["schema"]["properties"]["token"]["minLength"] == 1
    for data in ({"token_type_hint": "refresh_token"}, {"token": ""}):  # a parameter without a value is as if omitted (RFC 6749 section 3.2)
        refused = requests.post(f"{stack.url}/oauth2/revoke", data=data, timeout=10)
        assert refused.status_code == 400 and refused.json()["error_description"] == "token is required"
