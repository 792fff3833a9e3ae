"""The system as an operator runs it: each service and the edge (gunicorn) as real processes."""

from __future__ import annotations

import pathlib
import time

import requests

from tests.support import servers

ACCOUNTS = "shop.accounts.v1.AccountsService"
ISSUER = "https://shop.local"


class Stack:
    def __init__(self, pki_dir: pathlib.Path, data_dir: pathlib.Path, **extra_env: str):
        self.pki_dir = pki_dir
        self._accounts_env = servers.service_env("accounts", pki_dir, data_dir, TOKEN_ISSUER=ISSUER, **extra_env)
        self.accounts = servers.ServiceProcess("services.accounts", self._accounts_env)
        servers.wait_serving(pki_dir, self.accounts.port)
        self.edge = servers.ServiceProcess("edge", {
            "EDGE_PORT": "0", "TLS_DIR": str(pki_dir), "TOKEN_ISSUER": ISSUER, "EDGE_WORKERS": "2",
            "EDGE_UPSTREAMS": f"{ACCOUNTS}=127.0.0.1:{self.accounts.port}", "JWKS_METHOD": f"/{ACCOUNTS}/GetJwks",
            "OAUTH_TOKEN_METHOD": f"/{ACCOUNTS}/IssueToken", "OAUTH_REVOKE_METHOD": f"/{ACCOUNTS}/RevokeToken",
            "EDGE_ACCESS_LOG": "-",
        })
        self.url = f"http://127.0.0.1:{self.edge.port}"
        self._wait_ready()
        self.admin = servers.create_admin(self._accounts_env, "stackadmin")

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise TimeoutError("edge not ready:\n" + "".join(self.edge.lines[-20:]))

    def register(self, username: str, password: str = servers.PASSWORD) -> dict:
        reply = requests.post(f"{self.url}/v1/accounts", json={
            "username": username, "email": f"{username}@example.com", "password": password}, timeout=10)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def token(self, username: str, password: str = servers.PASSWORD, **form: str) -> dict:
        reply = requests.post(f"{self.url}/oauth2/token", data={
            "grant_type": "password", "username": username, "password": password, **form}, timeout=10)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def stop(self) -> None:
        assert self.edge.stop() == 0, "".join(self.edge.lines[-20:])
        assert self.accounts.stop() == 0, "".join(self.accounts.lines[-20:])
