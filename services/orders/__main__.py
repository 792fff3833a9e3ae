"""python -m services.orders: run the orders service until SIGTERM."""

import sys

from runtime.server import run_service
from services.orders.server import create_server, load_settings

if __name__ == "__main__":
    sys.exit(run_service(load_settings, create_server))
