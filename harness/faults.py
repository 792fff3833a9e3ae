"""Services with a fault built in, for crash tests; production wiring has none of this.

    python -m harness.faults orders-crash-after-reserve

runs the real orders service, with one difference: the process dies (exit code 70) right after
the stock of an order is reserved and before the order is confirmed, as a power cut would.
"""

from __future__ import annotations

import functools
import logging
import os
import sys

from runtime.server import run_service

_LOGGER = logging.getLogger(__name__)
CRASH_EXIT_CODE = 70


def _crash_after_reserve(order) -> None:
    _LOGGER.warning("fault injection: exiting after reserving order %s", order.id)
    os._exit(CRASH_EXIT_CODE)


def main(fault: str) -> int:
    if fault != "orders-crash-after-reserve":
        print(f"unknown fault {fault!r}; known: orders-crash-after-reserve", file=sys.stderr)
        return 2
    from services.orders.server import create_server, load_settings

    return run_service(load_settings, functools.partial(create_server, after_reserve=_crash_after_reserve))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
