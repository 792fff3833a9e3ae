"""The storefront (web/shop/) in Debian's Chromium against the real system: sign-up, sign-in with the
authorization code flow and PKCE, products, cart, checkout (one order per cart, however often it is
clicked), out of stock, cancelling, sign-out, a catalog outage and an expired session. Each effect
is checked on the page and, where it matters, through the REST API; every page state is audited by
axe-core and photographed into .artifacts/browser/."""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pytest
from playwright.sync_api import expect

from harness import servers
from tests.browser.conftest import shop_fixture
from tests.browser.storefront import EXPIRED, ROOT, TIMES, UNAVAILABLE

pytestmark = pytest.mark.browser

MUG, TOWEL, NOTEBOOK = "Ceramic mug", "Linen tea towel", "Dot-grid notebook"
DOCS_SCREENSHOT = ROOT / "docs" / "images" / "storefront.png"


@pytest.fixture(scope="module")
def products(shop) -> dict[str, str]:
    """The catalogue every test sees: two products in stock and one sold out."""
    return {
        MUG: shop.make_product(MUG, 1500, 25, "Stoneware, 350 ml, dishwasher safe."),
        TOWEL: shop.make_product(TOWEL, 850, 40, "Washed linen, 50 by 70 cm."),
        NOTEBOOK: shop.make_product(NOTEBOOK, 1200, 0, "A5, 160 pages."),
    }


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


def confirmed(orders: list[dict]) -> list[dict]:
    return [o for o in orders if o["status"] == "CONFIRMED"]


def test_sign_up_then_sign_in_with_pkce_shows_products_with_price_and_stock(shop, products, page):
    page.open_storefront(shop)
    expect(page.page).to_have_title("Shop")
    expect(page.page.get_by_role("heading", name="Create account")).to_be_visible()
    page.audit("signed-out")
    page.screenshot("signed-out")

    username = f"newcomer{uuid.uuid4().hex[:8]}"
    form = page.page.locator("#signup")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Email").fill(f"{username}@example.com")
    form.get_by_label("Password").fill("short")
    with page.expecting_http_errors(400):
        form.get_by_role("button", name="Create account").click()
        expect(page.page.locator("#signup-password-error")).to_contain_text("at least 10 characters")
    expect(form.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page.page.get_by_role("alert")).to_contain_text("could not be created")
    page.audit("sign-up-field-errors")
    page.screenshot("sign-up-field-errors")

    form.get_by_label("Password").fill(servers.PASSWORD)
    form.get_by_role("button", name="Create account").click()
    page.page.wait_for_url("**/oauth2/authorize?**")
    authorize = page.page.url
    for expected in ("response_type=code", "client_id=shop-web", "code_challenge_method=S256", "code_challenge=", "state="):
        assert expected in authorize, authorize
    expect(page.page.get_by_role("button", name="Sign in")).to_be_visible()
    page.audit("sign-in-page")
    page.screenshot("sign-in-page")
    tokens = page.sign_in(shop, username, start=False)
    assert set(tokens["scope"].split()) == {"accounts.read", "catalog.read", "orders.read", "orders.write"}
    assert shop.stack.token(username)["access_token"]  # the account the page created is real

    expect(page.page.locator("#who")).to_have_text(f"Signed in as {username}")
    mug = page.product(MUG)
    expect(mug).to_contain_text("€15.00")
    expect(mug).to_contain_text("25 in stock")
    expect(page.product(TOWEL)).to_contain_text("€8.50")
    notebook = page.product(NOTEBOOK)
    expect(notebook).to_contain_text("Out of stock")
    expect(notebook.get_by_role("button", name="Add to cart")).to_be_disabled()
    # The tokens are in the page's memory only; the code and PKCE secrets are gone.
    stored = page.page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])")
    assert tokens["access_token"] not in stored and tokens["refresh_token"] not in stored
    assert "pendingSignIn" not in stored and "code=" not in page.page.url
    # The only cookie is the sign-in form's own CSRF token (HttpOnly, for /oauth2/authorize alone).
    assert [c["name"] for c in page.page.context.cookies()] in ([], ["oauth-csrf"])


def test_add_to_cart_and_check_out_places_a_confirmed_order(shop, products, page):
    username = shop.new_shopper()
    stock_before = shop.stock_of(products[MUG])
    page.open_storefront(shop)
    page.sign_in(shop, username)
    page.add_to_cart(MUG, 2)
    page.add_to_cart(TOWEL, 1)
    page.cart_item(MUG).get_by_label(f"Quantity of {MUG} in cart").fill("3")
    page.cart_item(MUG).get_by_label(f"Quantity of {MUG} in cart").press("Tab")
    expect(page.page.locator("#cart-total")).to_have_text("€53.50")
    assert [(i["name"], i["quantity"]) for i in page.stored_cart()["items"]] == [(MUG, 3), (TOWEL, 1)]
    page.audit("products-and-cart")
    taken = page.screenshot("products-and-cart")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):  # the README's picture; a test run leaves the checkout as it was
        shutil.copyfile(taken, DOCS_SCREENSHOT)

    page.checkout_and_expect_confirmed()
    expect(page.page.locator("#cart-empty")).to_be_visible()
    orders = page.page.locator("li.order")
    expect(orders).to_have_count(1)
    expect(orders.first).to_contain_text("Confirmed")
    expect(orders.first).to_contain_text(f"3 {TIMES} {MUG}")
    expect(orders.first).to_contain_text("€53.50")
    page.audit("order-history")
    page.screenshot("order-history", showing="#orders-section")

    placed = shop.orders_of(username)
    assert [o["status"] for o in placed] == ["CONFIRMED"]
    assert placed[0]["total"] == {"currencyCode": "EUR", "amountMinor": "5350"}
    expect(orders.first).to_contain_text(placed[0]["id"])
    assert shop.stock_of(products[MUG]) == stock_before - 3
    expect(page.product(MUG)).to_contain_text(f"{stock_before - 3} in stock")


def test_double_clicking_check_out_places_exactly_one_order(shop, products, page):
    username = shop.new_shopper()
    page.open_storefront(shop)
    page.sign_in(shop, username)
    page.add_to_cart(TOWEL, 1)
    page.page.get_by_role("button", name="Check out").dblclick()
    expect(page.page.get_by_role("status")).to_contain_text("is confirmed", timeout=20_000)
    # Two clicks in the same task, faster than any person: the second meets a disabled button.
    page.add_to_cart(TOWEL, 2)
    page.page.evaluate("() => { const b = document.getElementById('checkout'); b.click(); b.click(); }")
    expect(page.page.locator("li.order")).to_have_count(2, timeout=20_000)
    placed = shop.orders_of(username)
    assert sorted(int(o["items"][0]["quantity"]) for o in placed) == [1, 2], placed
    assert [o["status"] for o in placed] == ["CONFIRMED", "CONFIRMED"]


def test_ordering_more_than_the_stock_shows_out_of_stock_and_keeps_the_cart(shop, products, page):
    lamp = unique("Desk lamp")
    lamp_id = shop.make_product(lamp, 4900, 2)
    username = shop.new_shopper()
    page.open_storefront(shop)
    page.sign_in(shop, username)
    page.add_to_cart(lamp, 2)
    shop.set_stock(lamp_id, 1)  # someone else bought one meanwhile
    with page.expecting_http_errors(409):
        page.page.get_by_role("button", name="Check out").click()
        alert = page.page.get_by_role("alert")
        expect(alert).to_contain_text(f"Not enough stock for {lamp} (you asked for 2)")
    expect(alert).to_contain_text("Your cart is kept")
    expect(page.page.get_by_label(f"Quantity of {lamp} in cart")).to_have_value("2")
    assert [(i["name"], i["quantity"]) for i in page.stored_cart()["items"]] == [(lamp, 2)]
    expect(page.product(lamp)).to_contain_text("1 in stock")  # the page shows the stock as it is now
    page.audit("out-of-stock")
    page.screenshot("out-of-stock")
    assert confirmed(shop.orders_of(username)) == [] and shop.stock_of(lamp_id) == 1
    [rejected] = shop.orders_of(username)  # recorded as refused, with what was asked for and its price
    assert (rejected["status"], rejected["statusReason"], rejected["items"][0]["name"]) == ("REJECTED", "out_of_stock", lamp)
    expect(page.page.locator("li.order").first).to_contain_text("Not placed (out of stock)")

    page.page.get_by_label(f"Quantity of {lamp} in cart").fill("1")
    page.page.get_by_label(f"Quantity of {lamp} in cart").press("Tab")
    page.checkout_and_expect_confirmed()
    assert len(confirmed(shop.orders_of(username))) == 1 and shop.stock_of(lamp_id) == 0


def test_cancelling_an_order_changes_its_status_and_gives_the_stock_back(shop, products, page):
    username = shop.new_shopper()
    page.open_storefront(shop)
    page.sign_in(shop, username)
    stock_before = shop.stock_of(products[TOWEL])
    page.add_to_cart(TOWEL, 2)
    page.checkout_and_expect_confirmed()
    assert shop.stock_of(products[TOWEL]) == stock_before - 2
    order = page.page.locator("li.order").first
    order_id = shop.orders_of(username)[0]["id"]
    order.get_by_role("button", name="Cancel").click()
    expect(page.page.get_by_role("status")).to_contain_text(f"Order {order_id} is cancelled")
    expect(order).to_contain_text("Cancelled (cancelled by user)")
    expect(order.get_by_role("button", name="Cancel")).to_have_count(0)
    assert [o["status"] for o in shop.orders_of(username)] == ["CANCELLED"]
    assert shop.stock_of(products[TOWEL]) == stock_before


def test_signing_out_revokes_the_refresh_token(shop, products, page):
    username = shop.new_shopper()
    page.open_storefront(shop)
    tokens = page.sign_in(shop, username)
    with page.page.expect_request(lambda r: r.url.endswith("/oauth2/revoke")) as revoke:
        page.page.get_by_role("button", name="Sign out").click()
    assert f"token={tokens['refresh_token']}" in (revoke.value.post_data or "")
    expect(page.page.get_by_role("status")).to_have_text("You are signed out.")
    expect(page.page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    expect(page.page.locator("#products-section")).to_be_hidden()
    refused = shop.refresh(tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text


def test_a_catalog_outage_keeps_the_cart_and_the_retry_places_one_order(shop, products, page):
    username = shop.new_shopper()
    page.open_storefront(shop)
    page.sign_in(shop, username)
    page.add_to_cart(MUG, 1)
    shop.stack.catalogs[0].stop()
    try:
        # The edge waits for catalog until its deadline: 503, or 504 when the time runs out first.
        with page.expecting_http_errors(503, 504):
            page.page.get_by_role("button", name="Check out").click()
            expect(page.page.get_by_role("alert")).to_contain_text(UNAVAILABLE, timeout=30_000)
        expect(page.page.get_by_label(f"Quantity of {MUG} in cart")).to_have_value("1")
        kept = page.stored_cart()
        assert [(i["name"], i["quantity"]) for i in kept["items"]] == [(MUG, 1)] and kept["checkoutKey"]
        page.audit("shop-unavailable")
        page.screenshot("shop-unavailable")
    finally:
        shop.stack.catalogs[0] = shop.stack.restart("catalog", shop.stack.catalogs[0])
    page.checkout_and_expect_confirmed()
    placed = shop.orders_of(username)
    assert len(confirmed(placed)) == 1, placed
    assert all(o["status"] == "CANCELLED" for o in placed if o not in confirmed(placed))  # the outage's attempt


# Access and refresh tokens that live five seconds, with no leeway anywhere.
short_lived_shop = shop_fixture("short-lived", ACCESS_TOKEN_TTL_SECONDS="5", REFRESH_TOKEN_TTL_SECONDS="5",
                                TOKEN_LEEWAY_SECONDS="0")


def test_an_expired_session_asks_to_sign_in_again_and_keeps_the_cart(short_lived_shop, page):
    shop = short_lived_shop
    shop.make_product(MUG, 1500, 10)
    username = shop.new_shopper()
    page.open_storefront(shop)
    page.sign_in(shop, username)
    page.add_to_cart(MUG, 2)
    time.sleep(6)  # both tokens expire
    with page.expecting_http_errors(400, 401):
        page.page.get_by_role("button", name="Check out").click()
        expect(page.page.get_by_role("alert")).to_have_text(EXPIRED)
    expect(page.page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    expect(page.page.get_by_label(f"Quantity of {MUG} in cart")).to_have_value("2")
    page.audit("session-expired")
    page.screenshot("session-expired")
    assert shop.orders_of(username) == []

    page.sign_in(shop, username)
    expect(page.page.get_by_label(f"Quantity of {MUG} in cart")).to_have_value("2")
    page.checkout_and_expect_confirmed()
    assert [(o["status"], o["items"][0]["quantity"]) for o in shop.orders_of(username)] == [("CONFIRMED", "2")]


# Access tokens that live five seconds, refresh tokens that live long.
renewing_shop = shop_fixture("renewing", ACCESS_TOKEN_TTL_SECONDS="5", TOKEN_LEEWAY_SECONDS="0")


def test_an_expired_access_token_is_renewed_once_with_the_rotated_refresh_token(renewing_shop, page):
    shop = renewing_shop
    shop.make_product(MUG, 1500, 10)
    username = shop.new_shopper()
    page.open_storefront(shop)
    first = page.sign_in(shop, username)
    page.add_to_cart(MUG, 1)
    time.sleep(6)  # the access token expires; the refresh token does not
    with page.expecting_http_errors(401), page.page.expect_response(
            lambda r: r.url.endswith("/oauth2/token") and r.request.method == "POST") as renewed:
        page.checkout_and_expect_confirmed()
    assert "grant_type=refresh_token" in (renewed.value.request.post_data or "")
    assert renewed.value.status == 200
    rotated = renewed.value.json()["refresh_token"]
    assert rotated != first["refresh_token"]
    assert [o["status"] for o in shop.orders_of(username)] == ["CONFIRMED"]
    # Signing out revokes the refresh token the page holds now: the rotated one.
    page.page.get_by_role("button", name="Sign out").click()
    expect(page.page.get_by_role("status")).to_have_text("You are signed out.")
    assert shop.refresh(rotated).status_code == 400
