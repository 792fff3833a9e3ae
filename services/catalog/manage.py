"""Operator commands on the catalog store.

    python -m services.catalog.manage seed-demo    # a few products, once (kept if the catalog has any)
"""

from __future__ import annotations

import argparse
import sys

from runtime.settings import ServerSettings
from services.catalog.server import WORKLOAD
from services.catalog.service import CatalogService
from services.catalog.store import open_store
from services.common.commands import run_command

DEMO_PRODUCTS = [
    ("Espresso cup", "Thick-walled porcelain, 80 ml.", "EUR", 1250, 40),
    ("Pour-over kettle", "Gooseneck, 1 litre, stainless steel.", "EUR", 4900, 12),
    ("Single-origin beans", "Washed Ethiopian, 250 g, roasted weekly.", "EUR", 1590, 100),
    ("Hand grinder", "Conical burrs, 30 settings.", "EUR", 8900, 5),
]


def seed_demo(settings: ServerSettings) -> str:
    store = open_store(settings)
    try:
        if store.list_products(1, None)[0]:
            return "kept the existing catalog"
        catalog = CatalogService(store)
        for name, description, currency, price, stock in DEMO_PRODUCTS:
            catalog.create(name, description, currency, price, stock)
        return f"created {len(DEMO_PRODUCTS)} demo products"
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="catalog operator commands")
    parser.add_subparsers(dest="command", required=True).add_parser("seed-demo", help="create demo products once")
    return run_command(parser, lambda args: seed_demo(ServerSettings.from_env(WORKLOAD.name, WORKLOAD.port)))


if __name__ == "__main__":
    sys.exit(main())
