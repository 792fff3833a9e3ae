"""Operator commands on the catalog store.

    python -m services.catalog.manage seed-demo    # a few products, once (kept if the catalog has any)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from runtime.settings import ServerSettings
from services.catalog.server import SERVICE
from services.catalog.service import CatalogService
from services.catalog.store import open_store
from services.common.commands import run_command
from services.registry import server_settings


def _eur(amount_minor: int) -> dict[str, object]:
    return {"currency": "EUR", "price_minor": amount_minor}


# CatalogService.create's keyword arguments, one product each.
DEMO_PRODUCTS: list[dict[str, Any]] = [
    {"name": "Espresso cup", "description": "Thick-walled porcelain, 80 ml.", "price": _eur(1250), "stock": 40},
    {"name": "Pour-over kettle", "description": "Gooseneck, 1 litre, stainless steel.", "price": _eur(4900), "stock": 12},
    {"name": "Single-origin beans", "description": "Washed Ethiopian, 250 g, roasted weekly.", "price": _eur(1590),
     "stock": 100},
    {"name": "Hand grinder", "description": "Conical burrs, 30 settings.", "price": _eur(8900), "stock": 5},
]


def seed_demo(settings: ServerSettings) -> str:
    store = open_store(settings)
    try:
        if store.list_products(1, None)[0]:
            return "kept the existing catalog"
        catalog = CatalogService(store)
        for demo in DEMO_PRODUCTS:
            catalog.create(**demo)
        return f"created {len(DEMO_PRODUCTS)} demo products"
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="catalog operator commands")
    parser.add_subparsers(dest="command", required=True).add_parser("seed-demo", help="create demo products once")
    return run_command(parser, lambda args: seed_demo(server_settings(SERVICE)))


if __name__ == "__main__":
    sys.exit(main())
