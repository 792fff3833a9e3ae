"""Finds service descriptors by full name in the generated code, without knowing any service.

"library.shelves.v1.ShelfService" -> imports every *_pb2 module of package library.shelves.v1,
which registers its descriptors in protobuf's default pool.
"""

from __future__ import annotations

import importlib
import pkgutil

from google.protobuf import descriptor as _d
from google.protobuf import descriptor_pool


def load_service(full_name: str) -> _d.ServiceDescriptor:
    pool = descriptor_pool.Default()
    try:
        return pool.FindServiceByName(full_name)
    except KeyError:
        pass
    package = full_name.rpartition(".")[0]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise LookupError(f"no generated code for package {package!r} (service {full_name})") from None
    for info in pkgutil.iter_modules(module.__path__):
        if info.name.endswith("_pb2"):
            importlib.import_module(f"{package}.{info.name}")
    try:
        return pool.FindServiceByName(full_name)
    except KeyError:
        raise LookupError(f"service {full_name} not found in package {package}") from None


def load_method(full_method: str) -> _d.MethodDescriptor:
    """"/pkg.Service/Method" -> its descriptor."""
    service, _, method = full_method.strip("/").partition("/")
    found = load_service(service).methods_by_name.get(method)
    if found is None:
        raise LookupError(f"method {full_method} not found")
    return found
