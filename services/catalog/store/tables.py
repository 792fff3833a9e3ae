"""The catalog's tables that both adapters keep alike, each written once (runtime/tables.py).

A field added to Product becomes a column of `products` in both stores, added to existing tables
when a store opens; only what differs from the field's annotation is declared here.
"""

from runtime.tables import SQLITE_ONLY, Table, column
from services.catalog.domain import Product

PRODUCTS = Table("products", Product, key="id", columns=[
    # Cassandra keeps stock in its `stock` table beside the holds, one row that compare-and-set changes;
    # SQLite keeps it in the product row, changed in the same transaction as a reservation's holds.
    column("stock", stores=SQLITE_ONLY, constraint="CHECK (stock >= 0)"),
])
# What save_product never writes: a product's creation time, and its stock (the stock methods' own).
PRODUCT_NEVER_SAVED = ("created_at", "stock")
