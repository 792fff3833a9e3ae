"""What the storefront tests share: the shop's data set up over the REST API, a page watched for
console errors and CSP violations, axe-core audits, screenshots, and signing in as a person does."""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
import uuid

import requests
from playwright.sync_api import Page, expect

from harness import servers

ROOT = pathlib.Path(__file__).resolve().parents[2]
SITE_DIR = ROOT / "web" / "shop"
ARTIFACTS = ROOT / ".artifacts" / "browser"
CLIENT_ID = "shop-web"
SCOPES = ["accounts.read", "catalog.read", "orders.read", "orders.write"]
UNAVAILABLE = "The shop is temporarily unavailable. Your cart is kept; please try again."
EXPIRED = "Your session has expired. Please sign in again."
TIMES = "\u00d7"  # the multiplication sign, as the page writes quantities ("2 \u00d7 Mug")
# How Chromium reports an HTTP error answer to fetch() on the console.
_FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")
# Reports every CSP violation to the test: into a window array (read at the end) and, because a
# navigation throws that array away, to a function the test exposes to every page of the context.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const seen = `${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber}`;
  window.__cspViolations.push(seen);
  if (window.__reportCspViolation) window.__reportCspViolation(seen);
});
"""


class Shop:
    """The shop behind the page, driven over its REST API as an administrator or a shopper."""

    def __init__(self, stack):
        self.stack = stack
        self.url = stack.url

    def admin_token(self) -> str:
        return self.stack.token(*self.stack.admin)["access_token"]

    def register_storefront_client(self) -> None:
        reply = requests.post(f"{self.url}/v1/clients", headers=_bearer(self.admin_token()), timeout=10, json={
            "name": "Storefront", "clientId": CLIENT_ID, "clientType": "PUBLIC",
            "redirectUris": [f"{self.url}/shop/"], "scopes": SCOPES})
        assert reply.status_code == 200, reply.text

    def make_product(self, name: str, price_minor: int, stock: int, description: str = "") -> str:
        admin = self.admin_token()
        created = requests.post(f"{self.url}/v1/products", headers=_bearer(admin), timeout=10, json={
            "name": name, "description": description, "price": {"currencyCode": "EUR", "amountMinor": str(price_minor)}})
        assert created.status_code == 200, created.text
        product_id = created.json()["id"]
        self.set_stock(product_id, stock, admin)
        return product_id

    def set_stock(self, product_id: str, quantity: int, admin: str | None = None) -> None:
        reply = requests.post(f"{self.url}/v1/products/{product_id}:setStock", json={"quantity": str(quantity)},
                              headers=_bearer(admin or self.admin_token()), timeout=10)
        assert reply.status_code == 200, reply.text

    def stock_of(self, product_id: str) -> int:
        reply = requests.get(f"{self.url}/v1/products/{product_id}", headers=_bearer(self.admin_token()), timeout=10)
        assert reply.status_code == 200, reply.text
        return int(reply.json()["stock"])

    def new_shopper(self) -> str:
        """A registered customer's username (the password is servers.PASSWORD)."""
        username = f"shopper{uuid.uuid4().hex[:10]}"
        self.stack.register(username)
        return username

    def orders_of(self, username: str) -> list[dict]:
        token = self.stack.token(username)["access_token"]
        reply = requests.get(f"{self.url}/v1/orders", params={"pageSize": 100}, headers=_bearer(token), timeout=10)
        assert reply.status_code == 200, reply.text
        return reply.json().get("orders", [])

    def refresh(self, refresh_token: str) -> requests.Response:
        return requests.post(f"{self.url}/oauth2/token", timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class WatchedPage:
    """A page whose console errors, uncaught exceptions and CSP violations fail the test, except
    Chromium's "Failed to load resource" line for an HTTP status the current step expects."""

    def __init__(self, page: Page, axe_source: str):
        self.page = page
        self._axe_source = axe_source
        self.problems: list[str] = []
        self.csp_violations: list[str] = []
        self._expected_statuses: set[int] = set()
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught exception: {error}"))

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        failed = _FAILED_LOAD.search(message.text)
        if failed and int(failed.group(1)) in self._expected_statuses:
            return
        self.problems.append(f"console error: {message.text} ({message.location.get('url', '')})")

    @contextlib.contextmanager
    def expecting_http_errors(self, *statuses: int):
        """Within the block, Chromium's console line for an answer with one of these statuses is expected."""
        before = set(self._expected_statuses)
        self._expected_statuses |= set(statuses)
        try:
            yield
        finally:
            self._expected_statuses = before

    def assert_clean(self) -> None:
        with contextlib.suppress(Exception):  # a page that is gone has reported through the binding already
            self.csp_violations += [v for v in self.page.evaluate("window.__cspViolations || []") if v not in self.csp_violations]
        assert not self.csp_violations, f"CSP violations: {self.csp_violations}"
        assert not self.problems, "\n".join(self.problems)

    def audit(self, state: str) -> list[dict]:
        """axe-core over the page as it is now: no serious or critical violation; the others are printed."""
        if not self.page.evaluate("typeof window.axe === 'object'"):
            self.page.evaluate(self._axe_source)  # evaluated over CDP: the page's CSP does not apply
        violations = self.page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
        summary = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                    "targets": [node["target"] for node in v["nodes"]][:5]} for v in violations]
        minor = [v for v in summary if v["impact"] not in ("serious", "critical")]
        if minor:
            print(f"axe, {state}: minor violations: {json.dumps(minor)}")
        grave = [v for v in summary if v["impact"] in ("serious", "critical")]
        assert not grave, f"axe, {state}: {json.dumps(grave, indent=1)}"
        return summary

    def screenshot(self, state: str, showing: str = "") -> pathlib.Path:
        """The viewport, scrolled first to the element `showing` (a selector) if one is named."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{state}.png"
        if showing:
            self.page.locator(showing).scroll_into_view_if_needed()
        self.page.screenshot(path=str(path))
        return path

    # --- as a person uses the page --------------------------------------------------------------

    def open_storefront(self, shop: Shop) -> None:
        self.page.goto(f"{shop.url}/shop/")
        self.wait_settled()

    def wait_settled(self) -> None:
        expect(self.page.locator("body[data-ready='true']")).to_be_attached()

    def sign_in(self, shop: Shop, username: str, password: str = servers.PASSWORD, *, start: bool = True) -> dict:
        """Goes through the authorization code flow from the page's Sign in button (or, start=False,
        from the sign-in page already shown); returns the tokens the page received."""
        page = self.page
        if start:
            page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(re.compile(r"/oauth2/authorize"))
        page.locator("#username").fill(username)
        page.locator("#password").fill(password)
        with page.expect_response(lambda r: r.url.endswith("/oauth2/token") and r.request.method == "POST") as answer:
            page.get_by_role("button", name="Sign in").click()
        assert answer.value.status == 200, answer.value.text()
        tokens = answer.value.json()
        page.wait_for_url(f"{shop.url}/shop/")  # the code is gone from the address
        self.wait_settled()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        expect(page.locator("#products-section")).to_be_visible()
        return tokens

    def product(self, name: str):
        return self.page.locator("li.product").filter(has=self.page.get_by_role("heading", name=name, exact=True))

    def add_to_cart(self, name: str, quantity: int = 1) -> None:
        product = self.product(name)
        product.get_by_label(f"Quantity of {name} to add").fill(str(quantity))
        product.get_by_role("button", name="Add to cart").click()
        expect(self.page.get_by_role("status")).to_contain_text(f"Added {quantity} {TIMES} {name}")

    def cart_item(self, name: str):
        return self.page.locator("li.cart-item").filter(has_text=name)

    def stored_cart(self) -> dict:
        return self.page.evaluate("JSON.parse(sessionStorage.getItem('shop.cart') || 'null')") or {"items": []}

    def checkout_and_expect_confirmed(self) -> None:
        self.page.get_by_role("button", name="Check out").click()
        expect(self.page.get_by_role("status")).to_contain_text("is confirmed", timeout=20_000)
