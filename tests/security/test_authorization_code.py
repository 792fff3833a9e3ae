"""The authorization code grant with PKCE, over the real edge and accounts service, and the attacks
on it that RFC 6749, RFC 7636, RFC 9700 and RFC 9207 name (each one a row of docs/security.md)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from harness.servers import PASSWORD
from harness.stack import Stack

CALLBACK = "http://127.0.0.1:9/callback"  # the client application's page; never fetched
SCOPE = "accounts.read orders.read"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce() -> tuple[str, str]:
    verifier = _b64(secrets.token_bytes(32))
    return verifier, _b64(hashlib.sha256(verifier.encode()).digest())


def register_client(stack, redirect_uris=(CALLBACK,), client_type="PUBLIC", name="Test app") -> str:
    admin = stack.token(*stack.admin)["access_token"]
    reply = requests.post(f"{stack.url}/v1/clients", headers={"Authorization": f"Bearer {admin}"}, timeout=10, json={
        "name": name, "clientType": client_type, "redirectUris": list(redirect_uris),
        "scopes": ["accounts.read", "orders.read", "orders.write"]})
    assert reply.status_code == 200, reply.text
    return reply.json()["clientId"]


@pytest.fixture(scope="module")
def client_id(stack):
    return register_client(stack)


@pytest.fixture(scope="module")
def user(stack):
    name = f"pkce{uuid.uuid4().hex[:8]}"
    return stack.register(name)["id"], name


def authorization_request(client_id: str, challenge: str, **overrides: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "scope": SCOPE,
            "state": secrets.token_urlsafe(16), "code_challenge": challenge, "code_challenge_method": "S256",
            **overrides}


def csrf_of(page: requests.Response) -> str:
    return html.unescape(re.search(r'name="csrf" value="([^"]+)"', page.text).group(1))


def sign_in(stack, params: dict[str, str], username: str, password: str = PASSWORD,
            session: requests.Session | None = None) -> requests.Response:
    """The browser's two steps: load the sign-in page, post its form. Redirects are not followed."""
    session = session or requests.Session()
    page = session.get(f"{stack.url}/oauth2/authorize", params=params, timeout=10)
    assert page.status_code == 200, page.text
    return session.post(f"{stack.url}/oauth2/authorize", data={**params, "csrf": csrf_of(page), "username": username,
                                                               "password": password},
                        headers={"Origin": stack.url, "Sec-Fetch-Site": "same-origin"}, allow_redirects=False, timeout=10)


def redirected(reply: requests.Response) -> dict[str, str]:
    assert reply.status_code == 303, reply.text
    location = reply.headers["Location"]
    assert location.startswith(CALLBACK + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(stack, client_id: str, code: str, verifier: str, redirect_uri: str = CALLBACK) -> requests.Response:
    return requests.post(f"{stack.url}/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id,
        "code_verifier": verifier})


def code_for(stack, client_id: str, user, verifier_challenge=None) -> tuple[str, str]:
    verifier, challenge = verifier_challenge or pkce()
    params = authorization_request(client_id, challenge)
    answer = redirected(sign_in(stack, params, user[1]))
    assert answer["state"] == params["state"]
    return answer["code"], verifier


# --- the flow -----------------------------------------------------------------------------------

def test_sign_in_returns_code_state_and_issuer_and_the_code_buys_tokens_once(stack, client_id, user):
    verifier, challenge = pkce()
    params = authorization_request(client_id, challenge)
    answer = redirected(sign_in(stack, params, user[1]))
    assert answer["state"] == params["state"] and answer["iss"] == stack_issuer(stack)  # RFC 9207
    tokens = exchange(stack, client_id, answer["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer" and body["refresh_token"] and set(body["scope"].split()) == set(SCOPE.split())
    me = requests.get(f"{stack.url}/v1/accounts/{user[0]}", headers={"Authorization": f"Bearer {body['access_token']}"},
                      timeout=10)
    assert me.status_code == 200 and me.json()["username"] == user[1]
    # A public client refreshes by naming itself; the refresh token rotates.
    refreshed = requests.post(f"{stack.url}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": client_id})
    assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] != body["refresh_token"]
    without_client = requests.post(f"{stack.url}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": refreshed.json()["refresh_token"]})
    assert without_client.status_code == 401 and without_client.json()["error"] == "invalid_client"


def stack_issuer(stack) -> str:
    return requests.get(f"{stack.url}/.well-known/oauth-authorization-server", timeout=10).json()["issuer"]


def test_metadata_announces_the_endpoint_code_flow_and_s256_only(stack):
    document = requests.get(f"{stack.url}/.well-known/oauth-authorization-server", timeout=10).json()
    assert document["authorization_endpoint"] == f"{document['issuer']}/oauth2/authorize"
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in document["grant_types_supported"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert "orders.admin" in document["scopes_supported"]  # grantable, though no route demands it
    openapi = requests.get(f"{stack.url}/openapi.json", timeout=10).json()
    scopes = openapi["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"]["scopes"]
    assert scopes["orders.admin"] == "Read and cancel anyone's orders."


def test_the_sign_in_page_cannot_be_framed_and_runs_no_script(stack, client_id):
    page = requests.get(f"{stack.url}/oauth2/authorize", params=authorization_request(client_id, pkce()[1]), timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy and "script-src" not in policy
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    assert "<script" not in page.text and "http" not in page.text.split("</style>")[1].replace(CALLBACK, "")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_wrong_password_shows_the_page_again_and_the_lockout_applies(stack, client_id):
    name = f"lock{uuid.uuid4().hex[:8]}"
    stack.register(name)
    params = authorization_request(client_id, pkce()[1])
    session = requests.Session()
    statuses = [sign_in(stack, params, name, "wrong password 1", session).status_code for _ in range(6)]
    assert statuses[0] == 400 and statuses[-1] == 429, statuses
    locked = sign_in(stack, params, name, PASSWORD, session)  # even the right password, while locked
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0 and 'role="alert"' in locked.text
    unknown = sign_in(stack, params, f"nobody{uuid.uuid4().hex[:6]}", "wrong password 1")
    assert unknown.status_code == 400 and "username or password is not correct" in unknown.text


# --- attacks: redirect URI ------------------------------------------------------------------------

@pytest.mark.parametrize("uri", [
    "http://127.0.0.1:9/other", CALLBACK + "/evil", CALLBACK + "x", CALLBACK + "?next=https://evil.example",
    "http://127.0.0.1:9/Callback", "https://evil.example/callback", "",
], ids=["unregistered", "path-suffix", "prefix-match", "extra-query", "case", "other-host", "missing"])
def test_a_redirect_uri_not_registered_exactly_is_shown_never_followed(stack, client_id, uri):
    reply = requests.get(f"{stack.url}/oauth2/authorize", allow_redirects=False, timeout=10,
                         params=authorization_request(client_id, pkce()[1], redirect_uri=uri))
    assert reply.status_code == 400 and "Location" not in reply.headers
    assert 'role="alert"' in reply.text


def test_an_unknown_client_is_shown_never_redirected(stack):
    reply = requests.get(f"{stack.url}/oauth2/authorize", allow_redirects=False, timeout=10,
                         params=authorization_request("no-such-client", pkce()[1]))
    assert reply.status_code == 400 and "Location" not in reply.headers


@pytest.mark.parametrize("overrides, error", [
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": ""}, "invalid_request"),
    ({"code_challenge": "short"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "catalog.admin"}, "invalid_scope"),
], ids=["plain-method", "no-challenge", "bad-challenge", "implicit", "scope-beyond-client"])
def test_errors_for_a_valid_client_go_back_to_its_redirect_uri_with_state_and_issuer(stack, client_id, overrides, error):
    params = authorization_request(client_id, pkce()[1], **overrides)
    answer = redirected(requests.get(f"{stack.url}/oauth2/authorize", params=params, allow_redirects=False, timeout=10))
    assert answer["error"] == error and answer["state"] == params["state"] and answer["iss"] == stack_issuer(stack)
    assert "code" not in answer


def test_state_cannot_open_a_redirect_or_smuggle_parameters(stack, client_id, user):
    state = "https://evil.example/&code=forged&iss=https://evil.example#x"
    _verifier, challenge = pkce()
    params = authorization_request(client_id, challenge, state=state)
    reply = sign_in(stack, params, user[1])
    assert reply.headers["Location"].startswith(CALLBACK + "?")
    query = parse_qs(urlsplit(reply.headers["Location"]).query)
    assert query["state"] == [state] and len(query["code"]) == 1 and query["code"] != ["forged"]
    assert query["iss"] == [stack_issuer(stack)]


def test_a_parameter_given_twice_is_refused(stack, client_id):
    params = authorization_request(client_id, pkce()[1])
    query = "&".join(f"{k}={requests.utils.quote(v)}" for k, v in params.items()) + "&client_id=other"
    reply = requests.get(f"{stack.url}/oauth2/authorize?{query}", allow_redirects=False, timeout=10)
    assert reply.status_code == 400 and "Location" not in reply.headers


def test_a_parameter_outside_printable_ascii_is_shown_never_redirected(stack, client_id):
    # RFC 6749 Appendix A: the parameters are VSCHAR; the document's pattern says the same.
    params = authorization_request(client_id, pkce()[1], state="caf\u00e9")
    reply = requests.get(f"{stack.url}/oauth2/authorize", params=params, allow_redirects=False, timeout=10)
    assert reply.status_code == 400 and "Location" not in reply.headers and 'role="alert"' in reply.text
    document = requests.get(f"{stack.url}/openapi.json", timeout=10).json()
    declared = {p["name"]: p for p in document["paths"]["/oauth2/authorize"]["get"]["parameters"]}
    assert declared["state"]["schema"]["pattern"] == "^[\\x20-\\x7E]*$" and not declared["state"]["required"]
    assert declared["response_type"]["schema"]["enum"] == ["code"] and declared["response_type"]["required"]
    assert declared["code_challenge_method"]["schema"]["enum"] == ["S256"]
    assert declared["code_challenge"]["schema"]["pattern"] == "^[A-Za-z0-9_-]{43}$"


# --- attacks: the code --------------------------------------------------------------------------

def test_missing_or_wrong_verifier_is_refused(stack, client_id, user):
    code, verifier = code_for(stack, client_id, user)
    missing = exchange(stack, client_id, code, "")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    wrong = exchange(stack, client_id, code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    plain = exchange(stack, client_id, code, pkce()[1])  # the challenge itself, as "plain" would send it
    assert plain.status_code == 400 and plain.json()["error"] == "invalid_grant"
    assert exchange(stack, client_id, code, verifier).status_code == 200  # guesses do not spend the code


def test_a_replayed_code_is_refused_and_revokes_what_the_first_exchange_issued(stack, client_id, user):
    code, verifier = code_for(stack, client_id, user)
    first = exchange(stack, client_id, code, verifier)
    assert first.status_code == 200
    replay = exchange(stack, client_id, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    refresh = requests.post(f"{stack.url}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"], "client_id": client_id})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


def test_a_code_is_bound_to_its_client_and_redirect_uri(stack, client_id, user):
    other = register_client(stack, name="Other app")
    code, verifier = code_for(stack, client_id, user)
    stolen = exchange(stack, other, code, verifier)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    elsewhere = exchange(stack, client_id, code, verifier, redirect_uri="http://127.0.0.1:9/other")
    assert elsewhere.status_code == 400 and elsewhere.json()["error"] == "invalid_grant"
    assert exchange(stack, client_id, code, verifier).status_code == 200  # the rightful client still can


def test_a_public_client_cannot_use_a_secret_or_client_credentials(stack, client_id):
    credentials = requests.post(f"{stack.url}/oauth2/token", data={"grant_type": "client_credentials"},
                                auth=(client_id, "guess"), timeout=10)
    assert credentials.status_code == 401 and credentials.json()["error"] == "invalid_client"
    named = requests.post(f"{stack.url}/oauth2/token", timeout=10,
                          data={"grant_type": "client_credentials", "client_id": client_id})
    assert named.status_code == 400 and named.json()["error"] == "unauthorized_client"


@pytest.mark.parametrize("uris", [["https://shop.example/cb#frag"], ["http://shop.example/cb"],
                                  ["https://*.example/cb"], ["/relative"], ["https://user@shop.example/cb"]],
                         ids=["fragment", "http-not-loopback", "wildcard", "relative", "user-info"])
def test_public_client_registration_refuses_unsafe_redirect_uris(stack, uris):
    admin = stack.token(*stack.admin)["access_token"]
    reply = requests.post(f"{stack.url}/v1/clients", headers={"Authorization": f"Bearer {admin}"}, timeout=10, json={
        "name": "Bad", "clientType": "PUBLIC", "redirectUris": uris, "scopes": ["orders.read"]})
    assert reply.status_code == 400, reply.text
    assert reply.json()["violations"][0]["field"] == "redirectUris[0]", reply.text


def test_a_public_client_without_redirect_uris_can_never_receive_a_code(stack):
    """Registering one is allowed (each field is valid on its own), but it is useless: the
    authorization endpoint sends codes only to a registered URI, compared exactly."""
    admin = stack.token(*stack.admin)["access_token"]
    reply = requests.post(f"{stack.url}/v1/clients", headers={"Authorization": f"Bearer {admin}"}, timeout=10, json={
        "name": "No way back", "clientType": "PUBLIC", "scopes": ["orders.read"]})
    assert reply.status_code == 200, reply.text
    page = requests.get(f"{stack.url}/oauth2/authorize", allow_redirects=False, timeout=10, params={
        "response_type": "code", "client_id": reply.json()["clientId"], "redirect_uri": "https://shop.example/cb",
        "code_challenge": "A" * 43, "code_challenge_method": "S256"})
    assert page.status_code == 400 and "Location" not in page.headers


# --- attacks: the sign-in form ------------------------------------------------------------------

def _post_form(stack, params, *, cookie: str | None, token: str, headers: dict | None = None) -> requests.Response:
    session = requests.Session()
    if cookie is not None:
        session.cookies.set("oauth-csrf", cookie, path="/oauth2/authorize")
    return session.post(f"{stack.url}/oauth2/authorize", allow_redirects=False, timeout=10, headers=headers or {},
                        data={**params, "csrf": token, "username": "anyone", "password": PASSWORD})


def test_cross_site_posts_of_the_sign_in_form_are_refused(stack, client_id, user):
    params = authorization_request(client_id, pkce()[1])
    assert _post_form(stack, params, cookie=None, token="t" * 43).status_code == 403
    assert _post_form(stack, params, cookie="a" * 43, token="b" * 43).status_code == 403
    same = "c" * 43
    assert _post_form(stack, params, cookie=same, token=same, headers={"Origin": "https://evil.example"}).status_code == 403
    assert _post_form(stack, params, cookie=same, token=same, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    refused = _post_form(stack, params, cookie=None, token="")
    assert "Location" not in refused.headers and 'role="alert"' in refused.text


# --- the password grant is legacy ---------------------------------------------------------------

def test_password_grant_is_off_unless_a_setting_enables_it(stack, tmp_path):
    stack = Stack(stack.pki_dir, tmp_path, store_env={"OAUTH_PASSWORD_GRANT": "off"})
    try:
        refused = requests.post(f"{stack.url}/oauth2/token", timeout=10, data={
            "grant_type": "password", "username": stack.admin[0], "password": stack.admin[1]})
        assert refused.status_code == 400 and refused.json()["error"] == "unsupported_grant_type"
        document = requests.get(f"{stack.url}/.well-known/oauth-authorization-server", timeout=10).json()
        assert "password" not in document["grant_types_supported"]
        # The REST routes that duplicated the token endpoints are gone.
        assert requests.post(f"{stack.url}/v1/tokens", json={"grantType": "password"}, timeout=10).status_code == 404
    finally:
        stack.stop()
