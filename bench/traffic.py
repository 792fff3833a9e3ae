"""The shop's traffic for the long benchmarks (bench/soak.py), and what they measure of it.

    mix = ShopMix.set_up(stack, users=4)        # users and a product, made through the edge
    outcomes = asyncio.run(open_loop(stack.edge.port, mix.request, rate=50, seconds=60))   # bench/http_client.py
    percentiles_ms([o.seconds for o in outcomes], 50, 99); rss_kib(pid); cpu_seconds(pids)
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import statistics
import uuid

import requests

from bench.http_client import Outcome, Request
from harness.shop import make_product


class ShopMix:
    """Reads of every service and order placements, in turn, spread over a few users:
    GET a product, GET my account, GET my orders (a page of 10), POST an order (its own Idempotency-Key)."""

    KINDS = ("GET product", "GET account", "GET orders", "POST order")

    def __init__(self, stack, users: list[str], product_ids: list[str]):
        self._stack, self._users, self._products = stack, users, product_ids
        self._tokens: dict[str, tuple[str, str]] = {}
        self.refresh_tokens()

    @classmethod
    def set_up(cls, stack, users: int = 4, products: int = 1) -> ShopMix:
        """`users` users; `products` products, the n-th request on product n mod products (one: every
        order contends for one stock row, the hot-product case)."""
        names = [f"bench{uuid.uuid4().hex[:10]}" for _ in range(users)]
        for name in names:
            stack.register(name)
        return cls(stack, names, [make_product(stack, 1_000_000_000, f"Bench beans {i}") for i in range(products)])

    def refresh_tokens(self) -> None:
        """New access tokens (they last 15 minutes), signed in through the edge like any client."""
        for name in self._users:
            token = self._stack.token(name)["access_token"]
            payload = token.split(".")[1]
            subject = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
            self._tokens[name] = (token, subject)

    def request(self, n: int) -> Request:
        """The n-th request of the mix: each user in turn, each kind in turn."""
        return self.request_of(self.KINDS[(n // len(self._users)) % len(self.KINDS)], n)

    def request_of(self, kind: str, n: int) -> Request:
        """The n-th request of one kind (users in turn)."""
        token, me = self._tokens[self._users[n % len(self._users)]]
        product = self._products[n % len(self._products)]
        auth = (("Authorization", f"Bearer {token}"),)
        if kind == "GET product":
            return Request(kind, "GET", f"/v1/products/{product}", auth)
        if kind == "GET account":
            return Request(kind, "GET", f"/v1/accounts/{me}", auth)
        if kind == "GET orders":
            return Request(kind, "GET", "/v1/orders?pageSize=10", auth)
        body = json.dumps({"items": [{"productId": product, "quantity": "1"}]}).encode()
        return Request(kind, "POST", "/v1/orders", (*auth, ("Idempotency-Key", uuid.uuid4().hex)), body)


def check_edge(url: str) -> None:
    """Fails early if the edge does not answer (the benchmarks would only count errors)."""
    if requests.get(f"{url}/readyz", timeout=10).status_code != 200:
        raise RuntimeError(f"{url} is not ready")


# --- figures ---------------------------------------------------------------------------------------------

def percentiles_ms(seconds: list[float], *qs: int) -> list[float | None]:
    """The given percentiles (1-99) in milliseconds; None where there is nothing to measure."""
    if len(seconds) < 2:
        return [seconds[0] * 1000 if seconds else None for _ in qs]
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return [cuts[q - 1] * 1000 for q in qs]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def answered_span(outcomes: list[Outcome]) -> float:
    """Seconds from the first request sent to the last answer (or give-up)."""
    return max(o.sent_at + o.seconds for o in outcomes) - min(o.sent_at for o in outcomes) if outcomes else 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the given processes have used (from /proc; 0 for one that is gone)."""
    total = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int | None:
    """Resident memory now (VmRSS), or None if the process is gone."""
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def stack_processes(stack) -> dict[str, int]:
    """Every process of the stack by name: the edge's gunicorn master and workers, and each service."""
    master = stack.edge.process.pid
    workers = sorted(map(int, pathlib.Path(f"/proc/{master}/task/{master}/children").read_text().split()))
    found = {"edge master": master, **{f"edge worker {pid}": pid for pid in workers}}
    found["accounts"] = stack.accounts.process.pid
    for index, catalog in enumerate(stack.catalogs):
        found["catalog" if len(stack.catalogs) == 1 else f"catalog {index + 1}"] = catalog.process.pid
    found["orders"] = stack.orders.process.pid
    return found
