"""Where downloads and builds are kept between runs: outside the checkout, keyed by version.

    SHOP_CACHE=/var/cache/shop make test     # default: ~/.cache/shop

A fresh clone reuses what an earlier one fetched or built; a changed pin makes a new entry.
`building(entry)` lets one process build an entry while others that want it wait for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import shutil
from collections.abc import Iterator


def cache_root() -> pathlib.Path:
    """The cache folder (SHOP_CACHE, else ~/.cache/shop), created if missing."""
    root = pathlib.Path(os.environ.get("SHOP_CACHE") or pathlib.Path.home() / ".cache" / "shop")
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def building(entry: pathlib.Path) -> Iterator[pathlib.Path | None]:
    """Holds the entry's lock; yields a scratch folder to build into, or None when the entry is
    already complete. The scratch folder becomes the entry only if the block ends without error,
    so an interrupted build never leaves a half-made entry behind."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.parent / f".{entry.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if entry.is_dir():
            yield None
            return
        scratch = entry.parent / f".{entry.name}.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        try:
            yield scratch
            scratch.rename(entry)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
