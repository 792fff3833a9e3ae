"""The edge over HTTPS: a real gunicorn edge with its dev certificate, a real TLS client (requests)."""

from __future__ import annotations

import uuid

import pytest
import requests

from harness import servers
from harness.shop import auth
from harness.stack import Stack

HSTS = "Strict-Transport-Security"


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory):
    running = Stack(servers.write_test_pki(tmp_path_factory.mktemp("tls-pki")), tmp_path_factory.mktemp("tls-data"), tls=True)
    yield running
    running.stop()


def test_the_readme_walk_through_works_over_https_with_the_dev_ca(tls_stack):
    url, ca = tls_stack.url, tls_stack.verify
    assert url.startswith("https://")
    name = f"tls{uuid.uuid4().hex[:10]}"
    account = tls_stack.register(name)
    token = tls_stack.token(name)["access_token"]
    assert requests.get(f"{url}/v1/accounts/{account['id']}", headers=auth(token), verify=ca, timeout=10).json()["username"] == name

    admin = tls_stack.token(*tls_stack.admin)["access_token"]
    product = requests.post(f"{url}/v1/products", headers=auth(admin), verify=ca, timeout=10, json={
        "name": "TLS mug", "description": "", "price": {"currencyCode": "EUR", "amountMinor": "900"}}).json()["id"]
    assert requests.post(f"{url}/v1/products/{product}:setStock", json={"quantity": "3"}, headers=auth(admin),
                         verify=ca, timeout=10).status_code == 200
    placed = requests.post(f"{url}/v1/orders", headers=auth(token, **{"Idempotency-Key": "tls-first"}), verify=ca, timeout=30,
                           json={"items": [{"productId": product, "quantity": "1"}]})
    assert placed.status_code == 200, placed.text
    cancelled = requests.post(f"{url}/v1/orders/{placed.json()['id']}:cancel", headers=auth(token), verify=ca, timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    stock = requests.get(f"{url}/v1/products/{product}", headers=auth(admin), verify=ca, timeout=10).json()["stock"]
    assert int(stock) == 3


def test_the_edge_certificate_verifies_against_the_dev_ca_only(tls_stack):
    assert requests.get(f"{tls_stack.url}/healthz", verify=tls_stack.verify, timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls_stack.url}/healthz", verify=str(tls_stack.pki_dir / "rogue-ca.pem"), timeout=5)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls_stack.url}/healthz", timeout=5)  # the system's CAs do not know the dev CA


def test_hsts_is_sent_over_tls(tls_stack):
    for path in ("/healthz", "/openapi.json", "/v1/products"):  # success and error answers alike
        reply = requests.get(f"{tls_stack.url}{path}", verify=tls_stack.verify, timeout=5)
        assert reply.headers[HSTS] == "max-age=31536000", path


def test_hsts_is_never_sent_over_plain_http(stack):
    reply = requests.get(f"{stack.url}/healthz", timeout=5)
    assert stack.url.startswith("http://") and reply.status_code == 200 and HSTS not in reply.headers
    # A client cannot ask for it: the forwarded scheme is believed only from a trusted proxy address,
    # and that proxy must really have served TLS. Here the only trusted address is loopback itself,
    # which is how a TLS-terminating proxy on the same host (or pod) reaches the edge.
    proxied = requests.get(f"{stack.url}/healthz", headers={"X-Forwarded-Proto": "https"}, timeout=5)
    assert proxied.headers.get(HSTS) == "max-age=31536000"


def test_plain_http_to_the_tls_port_is_refused(tls_stack):
    plain = tls_stack.url.replace("https://", "http://")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{plain}/healthz", timeout=5)


@pytest.mark.parametrize("env, named", [
    ({"EDGE_TLS_CERT_FILE": "edge.pem"}, "EDGE_TLS_KEY_FILE"),
    ({"EDGE_TLS_CERT_FILE": "edge.pem", "EDGE_TLS_KEY_FILE": "accounts.key"}, "EDGE_TLS_CERT_FILE/EDGE_TLS_KEY_FILE"),
    ({"EDGE_TLS_CERT_FILE": "missing.pem", "EDGE_TLS_KEY_FILE": "edge.key"}, "EDGE_TLS_CERT_FILE/EDGE_TLS_KEY_FILE"),
])
def test_a_bad_certificate_setting_stops_the_edge_with_the_variables_name(tls_stack, env, named):
    paths = {name: str(tls_stack.pki_dir / file) for name, file in env.items()}
    with pytest.raises(RuntimeError) as failed:
        servers.ServiceProcess("edge", {
            "EDGE_PORT": "0", "TLS_DIR": str(tls_stack.pki_dir), "JWKS_METHOD": "/shop.accounts.v1.AccountsService/GetJwks",
            "EDGE_UPSTREAMS": "shop.accounts.v1.AccountsService=127.0.0.1:1", "TOKEN_ISSUER": servers.ISSUER,
            "TOKEN_AUDIENCE": servers.AUDIENCE, **paths}, timeout=30)
    assert "edge: configuration error" in str(failed.value) and named in str(failed.value)
