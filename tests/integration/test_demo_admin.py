"""`make up` seeds the demo data with `services.accounts.manage seed-demo`; run again, it heals a demo
administrator that was deactivated, so the dev stack always has a way in."""

from __future__ import annotations

import dataclasses
import json

from harness import servers
from services.accounts import manage
from services.accounts.domain import DEACTIVATED
from services.accounts.server import AccountsSettings
from services.accounts.store import open_store


def test_seeding_again_reactivates_a_deactivated_demo_admin(pki_dir, tmp_path, monkeypatch):
    for name, value in servers.service_env("accounts", pki_dir, tmp_path).items():
        monkeypatch.setenv(name, value)
    credentials = tmp_path / "demo-credentials.json"
    manage.seed_demo(credentials)
    admin_name = json.loads(credentials.read_text())["admin"]["username"]
    settings = AccountsSettings.from_env()
    store = open_store(settings.server)
    try:
        # The service refuses to deactivate the last administrator; a database from before that rule may hold one.
        store.save_account(dataclasses.replace(store.find_account_by_username(admin_name), state=DEACTIVATED))
        assert manage.seed_demo(credentials).splitlines() == [
            f"kept demo client and admin in {credentials}",
            f"reactivated the demo admin {admin_name}, which had been deactivated"]
        assert store.find_account_by_username(admin_name).active
        assert manage.seed_demo(credentials) == f"kept demo client and admin in {credentials}"
    finally:
        store.close()
