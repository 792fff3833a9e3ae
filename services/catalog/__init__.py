"""The catalog service: products, prices and stock that never goes below zero."""
