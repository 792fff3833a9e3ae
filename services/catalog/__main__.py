"""python -m services.catalog: run the catalog service until SIGTERM."""

import sys

from runtime.server import run_service
from services.catalog.server import create_server, load_settings

if __name__ == "__main__":
    sys.exit(run_service(load_settings, create_server))
