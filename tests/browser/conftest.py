"""The storefront in a real browser: Debian's Chromium driven by Playwright (never a downloaded
browser) against the real system, the page served by the edge from web/shop/.

Each test gets a fresh browser context (no cookies, no storage) whose page fails the test on any
console error, uncaught exception or CSP violation (tests/browser/storefront.py, WatchedPage)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

from tests.browser.storefront import CSP_LISTENER, SITE_DIR, Shop, WatchedPage

# Debian's chromium package (CHROMIUM names another Chromium-based browser, e.g. on a CI runner).
CHROMIUM = pathlib.Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1000, "height": 700}
HERE = pathlib.Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core at the version package-lock.json pins; `npm ci` brings it when node_modules is missing."""
    if not AXE.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install axe-core for the browser tests (tests/browser/package.json)"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)
    return AXE.read_text()


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        # Named on purpose (.ci/run, the workflow): a browser that is not there is a failure, not a skip.
        assert "CHROMIUM" not in os.environ, f"CHROMIUM={CHROMIUM} does not exist"
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package, or set CHROMIUM); "
                    "the browser tests never download a browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def shop_fixture(name: str, **store_env: str):
    """A module-scoped fixture: a system of its own with these settings on every service."""

    @pytest.fixture(scope="module")
    def running(tmp_path_factory, chromium):  # chromium first: no system is started when the tests skip
        started = start_shop(tmp_path_factory, name, store_env=store_env)
        yield started
        started.stack.stop()

    return running


def start_shop(tmp_path_factory, name: str, *, store_env: dict | None = None) -> Shop:
    """The whole system (accounts, catalog, orders, edge) with the storefront's client registered."""
    from harness.servers import write_test_pki
    from harness.stack import Stack

    stack = Stack(write_test_pki(tmp_path_factory.mktemp(f"{name}-pki")), tmp_path_factory.mktemp(f"{name}-data"),
                  store_env=store_env,
                  edge_env={"EDGE_SITE_DIR": str(SITE_DIR), "TOKEN_LEEWAY_SECONDS": "0"})
    shop = Shop(stack)
    try:
        shop.register_storefront_client()
    except BaseException:
        stack.stop()
        raise
    return shop


shop = shop_fixture("storefront")  # one system for the module, default settings


@pytest.fixture
def open_page(chromium, axe_source):
    """Opens watched pages, each in a context of its own; every one is checked clean at the end."""
    opened: list[tuple[object, WatchedPage]] = []

    def open_one() -> WatchedPage:
        context = chromium.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
        context.set_default_timeout(15_000)
        watched: list[WatchedPage] = []
        context.expose_function("__reportCspViolation", lambda seen: watched[0].csp_violations.append(seen))
        context.add_init_script(CSP_LISTENER)
        watched.append(WatchedPage(context.new_page(), axe_source))
        opened.append((context, watched[0]))
        return watched[0]

    yield open_one
    try:
        for _, page in opened:
            page.assert_clean()
    finally:
        for context, _ in opened:
            context.close()


@pytest.fixture
def page(open_page) -> WatchedPage:
    return open_page()
