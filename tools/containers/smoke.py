"""Smoke and chaos checks of the stack that tools/containers/run.sh started (or any compose stack).

    python -m tools.containers.smoke --result result.json
    env: SHOP_COMPOSE (the docker-compose command line), EDGE_PUBLISHED_PORT, PROMETHEUS_PUBLISHED_PORT,
         JAEGER_PUBLISHED_PORT

Walks the README over HTTPS (the edge's certificate checked against the dev CA from the edge's
volume), checks that Prometheus scrapes every target and that one order is one trace in Jaeger (down to
the Cassandra statements), then
restarts orders and kills catalog in the middle of an order. Every check is written to the
result file (JSON) with what it saw; the exit code is 1 when any check failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

import requests

from tools.jaeger.query import QueryClient

COMPOSE = shlex.split(os.environ.get("SHOP_COMPOSE", "docker-compose"))
EDGE = f"https://localhost:{os.environ.get('EDGE_PUBLISHED_PORT', '8080')}"
PROMETHEUS = f"http://127.0.0.1:{os.environ.get('PROMETHEUS_PUBLISHED_PORT', '9090')}"
TRACES = f"http://127.0.0.1:{os.environ.get('JAEGER_PUBLISHED_PORT', '16686')}"
PASSWORD = "correct horse battery"


def compose(*args: str, timeout: float = 120) -> str:
    return subprocess.run([*COMPOSE, *args], check=True, capture_output=True, text=True, timeout=timeout).stdout


def wait_for(what: str, probe, timeout: float, every: float = 1.0):
    """Polls probe() until it returns something truthy; raises with the last thing it saw."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            seen = probe()
            if seen:
                return seen
        except (requests.RequestException, subprocess.SubprocessError, ValueError, KeyError) as error:
            seen = repr(error)
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last seen: {seen})")


class Shop:
    """The walk-through's calls, over HTTPS, checked against the dev CA."""

    def __init__(self, ca: str):
        self.ca = ca
        self.http = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # verify per request: a session's own setting loses to REQUESTS_CA_BUNDLE from the environment.
        return self.http.request(method, EDGE + path, headers=headers, timeout=kwargs.pop("timeout", 15), verify=self.ca, **kwargs)

    def ok(self, method: str, path: str, token: str | None = None, **kwargs) -> dict:
        reply = self.call(method, path, token, **kwargs)
        assert reply.status_code == 200, f"{method} {path}: {reply.status_code} {reply.text[:300]}"
        return reply.json()

    def customer(self) -> tuple[str, str]:
        name = f"smoke{uuid.uuid4().hex[:10]}"
        self.ok("POST", "/v1/accounts", json={"username": name, "email": f"{name}@example.com", "password": PASSWORD})
        token = self.ok("POST", "/oauth2/token", data={"grant_type": "password", "username": name, "password": PASSWORD})
        return name, token["access_token"]

    def stock(self, token: str, product: str) -> int:
        return int(self.ok("GET", f"/v1/products/{product}", token)["stock"])

    def order(self, token: str, product: str, key: str, **headers: str) -> requests.Response:
        return self.call("POST", "/v1/orders", token, timeout=30, headers={"Idempotency-Key": key, **headers},
                         json={"items": [{"productId": product, "quantity": "1"}]})


def walk_through(shop: Shop) -> dict:
    name, token = shop.customer()
    account_id = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["sub"]
    assert shop.ok("GET", f"/v1/accounts/{account_id}", token)["username"] == name
    patched = shop.ok("PATCH", f"/v1/accounts/{account_id}", token, json={"displayName": "Smoke"})
    assert patched["profile"]["displayName"] == "Smoke", patched
    products = wait_for("seeded products", lambda: shop.ok("GET", "/v1/products", token).get("products"), 60)
    product = max(products, key=lambda p: int(p.get("stock", 0)))["id"]
    before = shop.stock(token, product)
    first = shop.order(token, product, "smoke-first")
    assert first.status_code == 200, first.text
    again = shop.order(token, product, "smoke-first")
    assert again.json()["id"] == first.json()["id"], "the same Idempotency-Key placed a second order"
    assert shop.ok("GET", "/v1/orders", token)["orders"][0]["id"] == first.json()["id"]
    assert shop.stock(token, product) == before - 1
    shop.ok("POST", f"/v1/orders/{first.json()['id']}:cancel", token)
    assert shop.stock(token, product) == before, "cancelling did not give the stock back"
    hsts = shop.call("GET", "/healthz").headers.get("Strict-Transport-Security")
    assert hsts, "no HSTS header over HTTPS"
    return {"order": first.json()["id"], "status": first.json().get("status"), "hsts": hsts}


def browser_entry(shop: Shop) -> dict:
    """The storefront is served with its policy, and the authorization endpoint is announced."""
    page = shop.call("GET", "/shop/")
    assert page.status_code == 200 and "app.js" in page.text, f"/shop/: {page.status_code}"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    metadata = shop.ok("GET", "/.well-known/oauth-authorization-server")
    assert metadata["authorization_endpoint"].endswith("/oauth2/authorize"), metadata
    assert metadata["code_challenge_methods_supported"] == ["S256"], metadata
    unknown = shop.call("GET", "/oauth2/authorize", params={"client_id": "nobody", "redirect_uri": "https://x/cb"},
                        allow_redirects=False)
    assert unknown.status_code == 400 and "Location" not in unknown.headers, unknown.status_code
    return {"grants": metadata["grant_types_supported"]}


def plain_http_refused() -> dict:
    try:
        requests.get(EDGE.replace("https://", "http://") + "/healthz", timeout=5)
    except requests.ConnectionError as error:
        return {"refused": type(error).__name__}
    raise AssertionError("plain HTTP to the edge's port was answered")


def prometheus_targets() -> dict:
    def all_up():
        targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        health = {t["labels"].get("service", t["labels"]["job"]): t["health"] for t in targets}
        return health if len(health) == 4 and set(health.values()) == {"up"} else None

    return wait_for("Prometheus: 4 targets up", all_up, 90, every=3)


def one_trace(shop: Shop, token: str, product: str) -> dict:
    trace_id = uuid.uuid4().hex
    reply = shop.order(token, product, f"trace-{trace_id}", traceparent=f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01")
    assert reply.status_code == 200, reply.text

    def services():
        spans = QueryClient(TRACES, timeout=5).trace(trace_id)
        seen = {span.service for span in spans}
        stores = {span.service for span in spans
                  if "cassandra" in (span.attributes.get("db.system.name"), span.attributes.get("db.system"))}
        return {"services": sorted(seen), "with_cassandra_spans": sorted(stores)} \
            if {"edge", "orders", "accounts", "catalog"} <= seen and {"orders", "catalog"} <= stores else None

    return {"trace_id": trace_id, **wait_for("one trace in Jaeger through every service and Cassandra", services, 60, every=2)}


def ready(shop: Shop) -> bool:
    return shop.call("GET", "/readyz", timeout=5).status_code == 200


def restart_orders(shop: Shop, token: str, product: str) -> dict:
    started = time.monotonic()
    compose("restart", "orders")
    wait_for("edge ready after orders restarted", lambda: ready(shop), 90)
    reply = shop.order(token, product, "after-orders-restart")
    assert reply.status_code == 200, reply.text
    return {"recovered_seconds": round(time.monotonic() - started, 1), "order": reply.json()["id"]}


def kill_catalog_mid_order(shop: Shop, token: str, product: str) -> dict:
    """Catalog is frozen, an order goes in and waits on it, then catalog is killed under the order."""
    def confirmed() -> int:
        return sum(o.get("status") == "CONFIRMED" for o in shop.ok("GET", "/v1/orders", token)["orders"])

    before, confirmed_before = shop.stock(token, product), confirmed()
    answer: dict = {}
    pending = threading.Thread(target=lambda: answer.update(reply=shop.order(
        token, product, "mid-order-kill", **{"Request-Timeout": "8"})))
    compose("pause", "catalog")
    try:
        pending.start()
        time.sleep(2)  # the order is now inside orders, waiting on the frozen catalog
        compose("kill", "catalog")  # SIGKILL reaches a frozen container: it never answers that call
        pending.join(40)
        not_ready = shop.call("GET", "/readyz", timeout=5).status_code
    finally:
        subprocess.run([*COMPOSE, "unpause", "catalog"], capture_output=True)  # only if the kill never came
        compose("start", "catalog")
    reply = answer.get("reply")
    assert reply is not None, "the order during the outage got no answer"
    assert reply.status_code in (503, 504), f"{reply.status_code} {reply.text[:300]}"
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert not_ready == 503, f"/readyz answered {not_ready} with catalog down"
    wait_for("edge ready after catalog came back", lambda: ready(shop), 120)
    held = before - shop.stock(token, product)
    assert held == 0, f"{held} units held by the failed order"
    assert confirmed() == confirmed_before, "the order that failed is CONFIRMED"
    after = shop.order(token, product, "after-catalog-back")
    assert after.status_code == 200, after.text
    return {"during_outage": reply.status_code, "problem": reply.json().get("title"), "readyz_during_outage": not_ready,
            "held_after_recovery": held, "order_after_recovery": after.json()["id"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--result", type=pathlib.Path, required=True)
    args = parser.parse_args()
    checks: list[dict] = []

    def check(name: str, run):
        started = time.monotonic()
        try:
            detail, ok = run(), True
        except Exception as error:  # a failed check is recorded, and the next one still runs
            detail, ok = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}", False
        checks.append({"name": name, "ok": ok, "seconds": round(time.monotonic() - started, 1), "detail": detail})
        print(f"{'ok  ' if ok else 'FAIL'} {name} ({checks[-1]['seconds']}s): {detail}", flush=True)
        return detail if ok else None

    ca = pathlib.Path(tempfile.mkdtemp(prefix="shop-ca-")) / "ca.pem"
    ca.write_text(compose("exec", "-T", "edge", "cat", "/pki/ca.pem"))
    shop = Shop(str(ca))
    check("edge ready over HTTPS (dev CA)", lambda: wait_for("edge /readyz", lambda: ready(shop), 180))
    check("plain HTTP to the edge's port is refused", plain_http_refused)
    check("README walk-through over HTTPS", lambda: walk_through(shop))
    check("storefront and authorization endpoint", lambda: browser_entry(shop))
    check("Prometheus scrapes every target", prometheus_targets)
    customer: dict = {}

    def second_customer() -> dict:  # the token stays out of the result and the log
        customer["token"] = token = shop.customer()[1]
        products = shop.ok("GET", "/v1/products", token)["products"]
        customer["product"] = max(products, key=lambda p: int(p.get("stock", 0)))["id"]  # the most stock: several orders follow
        return {"product": customer["product"]}

    if check("a second customer for the checks below", second_customer):
        token, product = customer["token"], customer["product"]
        check("one order is one trace", lambda: one_trace(shop, token, product))
        check("chaos: orders restarted", lambda: restart_orders(shop, token, product))
        check("chaos: catalog killed mid-order", lambda: kill_catalog_mid_order(shop, token, product))
    args.result.write_text(json.dumps({"checks": checks}, indent=2))
    failed = [c["name"] for c in checks if not c["ok"]]
    print(f"smoke and chaos: {len(checks) - len(failed)} of {len(checks)} checks passed" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
