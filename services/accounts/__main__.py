"""python -m services.accounts: run the accounts service until SIGTERM."""

import sys

from runtime.server import run_service
from services.accounts.server import DEFAULT_PORT, SERVICE, create_server

if __name__ == "__main__":
    sys.exit(run_service(SERVICE, create_server, DEFAULT_PORT))
