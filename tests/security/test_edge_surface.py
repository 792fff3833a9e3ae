"""What the edge shows a stranger, through a real gunicorn edge serving HTTPS (Hardening 3, item 8):
its TLS is Mozilla's "intermediate" profile (edge/tls.py), /docs publishes only the files the page
loads, and no answer names the server software.

The edge runs alone, with no service behind it: everything tested here is the edge's own doing.
Its certificate is the dev PKI's (ECDSA P-256), so of the profile's TLS 1.2 ciphers only the
ECDHE-ECDSA ones can be negotiated with it.
"""

from __future__ import annotations

import contextlib
import pathlib
import re
import socket
import ssl
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests

from harness import servers

ACCOUNTS = "shop.accounts.v1.AccountsService"
# Mozilla's intermediate TLS 1.2 ciphers that an ECDSA certificate can serve.
INTERMEDIATE_ECDSA = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"}


@dataclass
class Edge:
    url: str
    port: int
    ca: str
    process: servers.ServiceProcess


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    pki_dir = servers.write_test_pki(tmp_path_factory.mktemp("surface-pki"))
    process = servers.ServiceProcess("edge", {
        "EDGE_PORT": "0", "EDGE_WORKERS": "1", "TLS_DIR": str(pki_dir),
        "EDGE_TLS_CERT_FILE": str(pki_dir / "edge.pem"), "EDGE_TLS_KEY_FILE": str(pki_dir / "edge.key"),
        "TOKEN_ISSUER": servers.ISSUER, "TOKEN_AUDIENCE": servers.AUDIENCE,
        "EDGE_UPSTREAMS": f"{ACCOUNTS}=127.0.0.1:1", "JWKS_METHOD": f"/{ACCOUNTS}/GetJwks"})
    running = Edge(f"https://127.0.0.1:{process.port}", process.port, str(pki_dir / "ca.pem"), process)
    try:
        _wait_serving(running)
        yield running
    finally:
        process.stop()


def _wait_serving(edge: Edge, timeout: float = 30) -> None:
    """Until a worker answers (the master logs its port before any worker has loaded the app)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{edge.url}/healthz", verify=edge.ca, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError("edge not serving:\n" + "".join(edge.process.lines[-20:]))


# --- TLS ------------------------------------------------------------------------------------------

def _handshake(edge: Edge, configure: Callable[[ssl.SSLContext], None]) -> tuple[str, str]:
    """(protocol, cipher) of a handshake by a client that trusts the dev CA, as `configure` leaves it."""
    context = ssl.create_default_context(cafile=edge.ca)
    configure(context)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        version, cipher = tls.version(), tls.cipher()
        assert version is not None and cipher is not None
        return version, cipher[0]


def _refused(edge: Edge, configure: Callable[[ssl.SSLContext], None]) -> str:
    """The alert with which the edge refuses that client (the client itself did send a hello)."""
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(edge, configure)
    assert refused.value.reason in ("SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_PROTOCOL_VERSION"), refused.value
    return refused.value.reason


def _tls12_only(*ciphers: str) -> Callable[[ssl.SSLContext], None]:
    def configure(context: ssl.SSLContext) -> None:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(":".join(ciphers) + ":@SECLEVEL=0")  # the client offers them, whatever they are
    return configure


def test_tls12_offers_exactly_the_intermediate_ciphers(edge):
    """Each TLS 1.2 cipher this client's OpenSSL knows, offered alone: only the profile's are taken."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.set_ciphers("ALL:@SECLEVEL=0")
    offered = [c["name"] for c in probe.get_ciphers() if c["protocol"] != "TLSv1.3"]
    assert len(offered) > 50 and set(offered) >= INTERMEDIATE_ECDSA
    taken = set()
    for cipher in offered:
        with contextlib.suppress(ssl.SSLError):
            taken.add(_handshake(edge, _tls12_only(cipher))[1])
    assert taken == INTERMEDIATE_ECDSA


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384",
                                    "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA"])
def test_a_client_that_offers_only_cbc_ciphers_is_refused(edge, cipher):
    assert _refused(edge, _tls12_only(cipher)) == "SSLV3_ALERT_HANDSHAKE_FAILURE"


@pytest.mark.parametrize("cipher", sorted(INTERMEDIATE_ECDSA))
def test_a_tls12_client_with_an_aead_cipher_is_served(edge, cipher):
    assert _handshake(edge, _tls12_only(cipher)) == ("TLSv1.2", cipher)


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_before_12_is_refused(edge, version):
    def old_client(context: ssl.SSLContext) -> None:
        with warnings.catch_warnings():  # the ssl module deprecates these versions: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, version)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")

    assert _refused(edge, old_client) == "TLSV1_ALERT_PROTOCOL_VERSION"


def _tls13_with_group(group: str) -> Callable[[ssl.SSLContext], None]:
    def configure(context: ssl.SSLContext) -> None:
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.set_ecdh_curve(group)  # the one key exchange group the client offers
    return configure


@pytest.mark.parametrize("group", ["X25519", "prime256v1", "secp384r1"])
def test_tls13_key_exchange_on_the_intermediate_groups_is_served(edge, group):
    assert _handshake(edge, _tls13_with_group(group))[0] == "TLSv1.3"


@pytest.mark.parametrize("group", ["secp521r1", "X448", "ffdhe2048"])
def test_tls13_key_exchange_on_other_groups_is_refused(edge, group):
    assert _refused(edge, _tls13_with_group(group)) == "SSLV3_ALERT_HANDSHAKE_FAILURE"


# --- what is published ----------------------------------------------------------------------------

def _swagger_ui_files() -> list[str]:
    import swagger_ui

    return sorted(p.name for p in (pathlib.Path(swagger_ui.__file__).parent / "static").iterdir() if p.is_file())


def test_docs_assets_are_only_the_files_the_docs_page_loads(edge):
    page = requests.get(f"{edge.url}/docs", verify=edge.ca, timeout=10)
    assert page.status_code == 200
    loaded = set(re.findall(r'(?:src|href)="/docs/assets/([^"]+)"', page.text))
    assert loaded == {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}
    for name in sorted(loaded):
        assert requests.get(f"{edge.url}/docs/assets/{name}", verify=edge.ca, timeout=10).status_code == 200, name
    # Everything else the package ships (source maps, oauth2-redirect.html, the editor, ...) is not there.
    others = [name for name in _swagger_ui_files() if name not in loaded]
    assert {"oauth2-redirect.html", "swagger-editor-bundle.js.map"} <= set(others)
    for name in [*others, "swagger-ui.css.map", "swagger-ui-bundle.js.map"]:
        reply = requests.get(f"{edge.url}/docs/assets/{name}", verify=edge.ca, timeout=10)
        assert reply.status_code == 404 and reply.headers["Content-Type"] == "application/problem+json", name


@pytest.mark.parametrize("path", ["/docs/assets/", "/docs/assets", "/docs/assets/%2E%2E/openapi.json",
                                  "/docs/assets/static/swagger-ui.css"])
def test_docs_assets_lists_no_directory(edge, path):
    reply = requests.get(f"{edge.url}{path}", verify=edge.ca, timeout=10)
    assert reply.status_code == 404 and reply.headers["Content-Type"] == "application/problem+json"


def test_no_answer_names_the_server_software(edge):
    answers = {
        200: requests.get(f"{edge.url}/healthz", verify=edge.ca, timeout=10),
        404: requests.get(f"{edge.url}/no/such/page", verify=edge.ca, timeout=10),
        413: requests.post(f"{edge.url}/v1/accounts", data=b"{}" + b" " * 70_000, verify=edge.ca, timeout=10,
                           headers={"Content-Type": "application/json"}),
    }
    for status, reply in answers.items():
        assert reply.status_code == status
        head = "\n".join(f"{name}: {value}" for name, value in reply.headers.items())
        assert "Server" not in reply.headers and "gunicorn" not in head.lower(), head
